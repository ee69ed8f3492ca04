//! Each kind's `fault:` settings, read into `firedrill_experiments` types with every problem
//! reported at its line.

use firedrill_experiments::Kind;
use firedrill_reader::read::{Fields, Reader};
use firedrill_reader::yaml::Node;

/// A drill's `fault:` settings for its kind, or the kind's defaults when it is left out (a kind
/// that has none says what it needs).
pub(super) fn read_settings(
    r: &mut Reader,
    f: &Fields,
    kind: Option<Kind>,
) -> Option<firedrill_experiments::Settings> {
    match (f.get("fault"), kind) {
        (Some(n), Some(kind)) => read_fault(r, n, &f.path_of("fault"), kind),
        (None, Some(kind)) => firedrill_experiments::Settings::default_for(kind).or_else(|| {
            r.required(f, "fault", needed(kind));
            None
        }),
        // The kind is wrong (and said so): there are no settings to read it for.
        (_, None) => None,
    }
}

/// A kind's `fault:` settings; a kind without settings (yet) says so.
fn read_fault(
    r: &mut Reader,
    node: &Node,
    path: &str,
    kind: Kind,
) -> Option<firedrill_experiments::Settings> {
    use firedrill_experiments::degrade::NetworkDegrade;
    use firedrill_experiments::{
        ContainerKill, DependencyFailure, NetworkPartition, NodeDrain, PodKill, ResourceStress,
        Settings,
    };
    match kind {
        Kind::PodKill => PodKill::read(r, node, path).map(Settings::PodKill),
        Kind::NetworkPartition => {
            NetworkPartition::read(r, node, path).map(Settings::NetworkPartition)
        }
        Kind::ContainerKill => ContainerKill::read(r, node, path).map(Settings::ContainerKill),
        Kind::NodeDrain => NodeDrain::read(r, node, path).map(Settings::NodeDrain),
        Kind::ResourceStress => ResourceStress::read(r, node, path).map(Settings::ResourceStress),
        Kind::DependencyFailure => {
            DependencyFailure::read(r, node, path).map(Settings::DependencyFailure)
        }
        Kind::RegionFailover => super::region::read_region_failover(r, node, path)
            .map(|rf| Settings::RegionFailover(Box::new(rf))),
        Kind::NetworkDegrade => NetworkDegrade::read(r, node, path).map(Settings::NetworkDegrade),
        Kind::Probe => {
            r.error(
                node.mark,
                path,
                format!(
                    "kind {} takes no `fault:` settings (it only observes)",
                    Kind::Probe
                ),
            );
            None
        }
    }
}

/// What a kind that needs `fault:` needs in it, for the message when it is missing.
fn needed(kind: Kind) -> &'static str {
    match kind {
        Kind::ContainerKill => "`fault: { container: NAME }`, the container to kill (see the README's container-kill section)",
        Kind::RegionFailover => "`fault: { from: REGION, to: REGION, dns: {..}, isolate: [..], promote: {..}, failback: {..} }` (see the README's region-failover section)",
        Kind::NetworkDegrade => "`fault: { delay: 100ms, jitter: 20ms, loss: 5%, rate: 1mbit }` (any of them; see the README's network-degrade section)",
        _ => "`fault: { dependency: { service: NAMESPACE/NAME }, mode: block }` (or scale-to-zero or http-fault; see the README's dependency-failure section)",
    }
}
