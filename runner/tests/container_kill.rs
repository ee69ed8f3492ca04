//! container-kill's helper for real: the script its pod runs, run here against processes this
//! test starts, with a proc root whose cgroup files name containers. The process of the named
//! container dies by SIGKILL; a process of another container lives on.

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use firedrill_experiments::container::KILL_SCRIPT;

struct Sleeper(std::process::Child);

impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn sleeper() -> Sleeper {
    Sleeper(
        Command::new("sleep")
            .arg("60")
            .spawn()
            .expect("start sleep"),
    )
}

/// A proc root where `pid`'s cgroup is that of container `id`, as containerd names it.
fn cgroup(root: &std::path::Path, pid: u32, id: &str) {
    let dir = root.join(pid.to_string());
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("cgroup"),
        format!("0::/kubepods.slice/kubepods-burstable.slice/cri-containerd-{id}.scope\n"),
    )
    .unwrap();
}

fn run_script(root: &std::path::Path, id: &str) -> std::process::Output {
    Command::new("sh")
        .args(["-c", KILL_SCRIPT])
        .env("CONTAINER_ID", format!("containerd://{id}"))
        .env("PROC", root)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap()
}

#[test]
fn the_helper_kills_exactly_the_named_containers_processes() {
    let root = std::env::temp_dir().join(format!("firedrill-proc-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let mut victim = sleeper();
    let neighbour = sleeper();
    let (victim_id, neighbour_id) = ("a1b2c3d4e5f6a7b8c9d0", "ffeeddccbbaa99887766");
    cgroup(&root, victim.0.id(), victim_id);
    cgroup(&root, neighbour.0.id(), neighbour_id);

    let out = run_script(&root, victim_id);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!(
            "firedrill: killed {} (container {victim_id})\n",
            victim.0.id()
        )
    );
    // SIGKILL: what an OOM kill or a crash looks like to the kubelet.
    let started = Instant::now();
    let status = loop {
        if let Some(status) = victim.0.try_wait().unwrap() {
            break status;
        }
        assert!(started.elapsed() < Duration::from_secs(5), "still alive");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(status.signal(), Some(9));
    let mut neighbour = neighbour;
    assert!(
        neighbour.0.try_wait().unwrap().is_none(),
        "the other container's process lives"
    );

    // A container with no process on the node: the helper fails and says so.
    let out = run_script(&root, "00112233445566778899");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "firedrill: no process of container 00112233445566778899 on this node\n"
    );
    let _ = std::fs::remove_dir_all(&root);
}
