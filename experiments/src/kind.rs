use std::fmt;
use std::str::FromStr;

/// Every fault kind a drill may name. The spelled names are a contract with users' files.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    PodKill,
    ContainerKill,
    NodeDrain,
    NetworkPartition,
    NetworkDegrade,
    ResourceStress,
    DependencyFailure,
    RegionFailover,
    ZoneOutage,
    Probe,
    /// A game day's faults as steps of one run (each step its own kind).
    Scenario,
}

impl Kind {
    pub const ALL: [Kind; 11] = [
        Kind::PodKill,
        Kind::ContainerKill,
        Kind::NodeDrain,
        Kind::NetworkPartition,
        Kind::NetworkDegrade,
        Kind::ResourceStress,
        Kind::DependencyFailure,
        Kind::RegionFailover,
        Kind::ZoneOutage,
        Kind::Probe,
        Kind::Scenario,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::PodKill => "pod-kill",
            Kind::ContainerKill => "container-kill",
            Kind::NodeDrain => "node-drain",
            Kind::NetworkPartition => "network-partition",
            Kind::NetworkDegrade => "network-degrade",
            Kind::ResourceStress => "resource-stress",
            Kind::DependencyFailure => "dependency-failure",
            Kind::RegionFailover => "region-failover",
            Kind::ZoneOutage => "zone-outage",
            Kind::Probe => "probe",
            Kind::Scenario => "scenario",
        }
    }

    /// Whether a fire of the kind changes anything (every kind but `probe`, which only observes);
    /// one that changes nothing may run without cluster access.
    pub fn changes_anything(self) -> bool {
        self != Kind::Probe
    }

    /// Whether the kind acts on pods chosen by `targets:` (and so must declare them).
    /// A probe only observes; a region failover acts on DNS and regions, a zone outage on a
    /// whole zone, not on pods chosen.
    pub fn needs_pod_targets(self) -> bool {
        !matches!(
            self,
            Kind::Probe | Kind::RegionFailover | Kind::ZoneOutage | Kind::Scenario
        )
    }

    /// The names, comma-separated, for error messages.
    pub fn allowed() -> String {
        Kind::ALL.map(Kind::name).join(", ")
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Kind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Kind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| format!("unknown kind {s:?} (allowed: {})", Kind::allowed()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for kind in Kind::ALL {
            assert_eq!(kind.name().parse::<Kind>(), Ok(kind));
        }
        let err = "pod-kil".parse::<Kind>().unwrap_err();
        assert!(
            err.contains("pod-kill, container-kill, node-drain"),
            "{err}"
        );
    }
}
