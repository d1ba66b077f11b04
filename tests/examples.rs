//! Tests of the example hooks in `packaging/examples`. Each script runs as
//! umm runs a hook (`UMM_PHASE`, `UMM_REASON`, `UMM_STATE_DIR`, output and
//! errors in one stream), with stub tools first on `PATH`: each logs its
//! arguments to a file and answers from small state files, so that the tests
//! can assert both the calls and what the script did with the answers.
//!
//! Where the real tool is installed and can work without a cluster (virsh
//! with libvirt's test driver, Pacemaker's tools on a CIB file), the script
//! also runs against it. When it is missing, the test writes that it was
//! skipped to the terminal (not captured), or fails if
//! `UMM_EXAMPLES_REQUIRE_REAL` requires it ("1" or "all", or a list such as
//! "virsh,crm_mon,crm_standby"), as CI should.

mod common;

use std::fs;
use std::ops::Deref;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::Tree;
use rstest::rstest;

const EXAMPLES: [&str; 6] = [
    "libvirt-guests",
    "pacemaker-standby",
    "ceph-noout",
    "kubernetes-drain",
    "pacemaker-quorum",
    "etcd-health",
];

// Where the real tools are looked for, and the `PATH` after the stubs.
use common::SYSTEM_PATH;

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("packaging/examples")
        .join(name)
}

// ---------------------------------------------------------------- stubs

/// The start of every stub: one line a call in $STUB_LOG.
const LOG: &str = "#!/bin/sh\necho \"${0##*/} $*\" >> \"$STUB_LOG\"\n";

/// Guests are files in $STUB/virsh/dom holding their state. A guest shuts
/// down when asked only if $STUB/virsh/obeys/<name> exists; it fails to
/// start if $STUB/virsh/broken/<name> exists; $STUB/virsh/down makes every
/// call fail. Output as virsh 9's.
const VIRSH: &str = r#"D="$STUB/virsh"
if [ -e "$D/down" ]; then echo "error: failed to connect to the hypervisor" >&2; exit 1; fi
if [ "$1" = -c ]; then shift 2; fi
cmd=$1 d=${2:-}
if [ "$cmd" = list ]; then
    for f in "$D"/dom/*; do
        if [ -f "$f" ] && [ "$(cat "$f")" = running ]; then echo "${f##*/}"; fi
    done
    echo
    exit 0
fi
if [ ! -f "$D/dom/$d" ]; then echo; echo "error: failed to get domain '$d'" >&2; exit 1; fi
s=$(cat "$D/dom/$d")
case "$cmd" in
domstate) echo "$s"; echo ;;
shutdown)
    echo "Domain '$d' is being shutdown"
    if [ -e "$D/obeys/$d" ]; then echo "shut off" > "$D/dom/$d"; fi ;;
destroy)
    if [ "$s" != running ]; then echo "error: Requested operation is not valid: domain is not running" >&2; exit 1; fi
    echo "shut off" > "$D/dom/$d"; echo "Domain '$d' destroyed" ;;
start)
    if [ "$s" = running ]; then echo "error: Domain is already active" >&2; exit 1; fi
    if [ -e "$D/broken/$d" ]; then echo "error: Failed to start domain '$d'" >&2; exit 1; fi
    echo running > "$D/dom/$d"; echo "Domain '$d' started" ;;
*) echo "stub virsh: unexpected call: $*" >&2; exit 99 ;;
esac
"#;

/// This node's name is in $STUB/crm/name (absent: the cluster is not
/// running here).
const CRM_NODE: &str = r#"case "$1" in
-n | --name)
    cat "$STUB/crm/name" 2>/dev/null && exit 0
    echo "error: Could not connect to controller: Connection refused" >&2; exit 102 ;;
-q | --quorum)
    cat "$STUB/crm/quorum" 2>/dev/null && exit 0
    echo "error: Could not connect to controller: Connection refused" >&2; exit 102 ;;
*) echo "stub crm_node: unexpected call: $*" >&2; exit 99 ;;
esac
"#;

/// `-s` prints $STUB/corosync/status and exits with $STUB/corosync/rc (0
/// when absent; corosync's 2 is "not quorate"); without the status file it
/// fails as corosync 3 does when it is not running.
const COROSYNC_QUORUMTOOL: &str = r#"if [ "$*" != "-s" ]; then echo "stub corosync-quorumtool: unexpected call: $*" >&2; exit 99; fi
if [ ! -f "$STUB/corosync/status" ]; then echo "Cannot initialize CMAP service" >&2; exit 1; fi
cat "$STUB/corosync/status"
exit "$(cat "$STUB/corosync/rc" 2>/dev/null || echo 0)"
"#;

/// The nodes are lines "name online standby resources_running" in
/// $STUB/crm/nodes, printed as crm_mon 2.1's XML, with a resource's <node>
/// child to be ignored; $STUB/crm/down makes it fail.
const CRM_MON: &str = r#"if [ "$*" != "--one-shot --output-as=xml" ]; then echo "stub crm_mon: unexpected call: $*" >&2; exit 99; fi
if [ -e "$STUB/crm/down" ]; then echo "crm_mon: Error: cluster is not available on this node" >&2; exit 102; fi
echo '<pacemaker-result api-version="2.25" request="crm_mon --one-shot --output-as=xml">'
echo '  <summary>'
echo '    <nodes_configured number="3"/>'
echo '  </summary>'
echo '  <nodes>'
while read -r n on sb res; do
    echo "    <node name=\"$n\" id=\"1\" online=\"$on\" standby=\"$sb\" standby_onfail=\"false\" maintenance=\"false\" pending=\"false\" unclean=\"false\" health=\"green\" shutdown=\"false\" expected_up=\"$on\" is_dc=\"false\" resources_running=\"$res\" type=\"member\"/>"
done < "$STUB/crm/nodes"
echo '  </nodes>'
echo '  <resources>'
echo '    <resource id="vip" resource_agent="ocf:heartbeat:IPaddr2" role="Started" active="true" nodes_running_on="1">'
echo '      <node name="zz" id="9" cached="true"/>'
echo '    </resource>'
echo '  </resources>'
echo '  <status code="0" message="OK"/>'
echo '</pacemaker-result>'
"#;

/// Sets a node's standby column; with $STUB/crm/moves, standby also moves
/// its resources away at once.
const CRM_STANDBY: &str = r#"node="" value=""
while [ $# -gt 0 ]; do
    case "$1" in
    --node) node=$2; shift ;;
    --update) value=$2; shift ;;
    esac
    shift
done
if [ -z "$node" ] || [ -z "$value" ]; then echo "stub crm_standby: unexpected call" >&2; exit 99; fi
sb=false; [ "$value" != on ] || sb=true
mv=""; [ ! -e "$STUB/crm/moves" ] || mv=1
awk -v n="$node" -v sb="$sb" -v mv="$mv" '$1 == n { $3 = sb; if (sb == "true" && mv) $4 = 0 } { print }' \
    "$STUB/crm/nodes" > "$STUB/crm/nodes.new"
mv "$STUB/crm/nodes.new" "$STUB/crm/nodes"
"#;

/// CRUSH hosts' OSD ids are in $STUB/ceph/tree-<host>; the cluster flags in
/// $STUB/ceph/flags; $STUB/ceph/unsafe makes ok-to-stop refuse, and
/// $STUB/ceph/readonly makes set and unset fail. Messages as Ceph 16-18's.
const CEPH: &str = r#"C="$STUB/ceph"
if [ "$1" = --connect-timeout ]; then shift 2; fi
case "$1 $2" in
"osd ls-tree")
    if [ ! -f "$C/tree-$3" ]; then echo "Error ENOENT: bucket '$3' does not exist" >&2; exit 2; fi
    cat "$C/tree-$3" ;;
"osd ok-to-stop")
    if [ -e "$C/unsafe" ]; then
        echo "Error EBUSY: unsafe to stop osd(s) at this time (17 PGs are or would become offline)" >&2
        exit 16
    fi
    shift 2
    echo "{\"ok_to_stop\":true,\"osds\":[$(echo "$*" | tr ' ' ,)],\"num_ok_pgs\":40,\"num_not_ok_pgs\":0}" ;;
"osd dump")
    printf 'epoch 42\nfsid 0f6c5b4e-1f2a-4d3c-9b8a-7e6d5c4b3a29\nflags %s\ncrush_version 7\npool 1 '"'rbd'"' replicated size 3\n' "$(cat "$C/flags")" ;;
"osd set" | "osd unset")
    if [ -e "$C/readonly" ]; then echo "Error EACCES: access denied" >&2; exit 13; fi
    f=$(tr , '\n' < "$C/flags" | grep -vx "$3")
    if [ "$2" = set ]; then f="$3
$f"; fi
    echo "$f" | grep . | paste -sd, - > "$C/flags"
    echo "$3 is $2" >&2 ;;
*) echo "stub ceph: unexpected call: $*" >&2; exit 99 ;;
esac
"#;

/// A node exists if $STUB/k8s/node-<name> does, holding "true" if it is
/// cordoned; $STUB/k8s/drain-fails makes drain time out. Each call leaves
/// the KUBECONFIG it saw in $STUB/k8s/kubeconfig.
const KUBECTL: &str = r#"K="$STUB/k8s"
echo "${KUBECONFIG:-}" > "$K/kubeconfig"
n=$2
[ "$1" != get ] || n=$3
if [ ! -f "$K/node-$n" ]; then echo "Error from server (NotFound): nodes \"$n\" not found" >&2; exit 1; fi
case "$1" in
get) printf %s "$(cat "$K/node-$n")" ;;
cordon) echo true > "$K/node-$n"; echo "node/$n cordoned" ;;
uncordon) : > "$K/node-$n"; echo "node/$n uncordoned" ;;
drain)
    if [ -e "$K/drain-fails" ]; then
        echo "error: unable to drain node \"$n\" due to error: global timeout reached: 240s" >&2
        exit 1
    fi
    echo "node/$n drained" ;;
*) echo "stub kubectl: unexpected call: $*" >&2; exit 99 ;;
esac
"#;

const HOSTNAME: &str = r#"h=$(cat "$STUB/hostname")
if [ "${1:-}" = -s ]; then echo "${h%%.*}"; else echo "$h"; fi
"#;

/// The real sleep, its calls logged: how long a hook waited, as events.
const SLEEP: &str = r#"for d in /usr/bin /bin; do [ -x "$d/sleep" ] && exec "$d/sleep" "$@"; done
exit 127
"#;

const STUBS: [(&str, &str); 9] = [
    ("virsh", VIRSH),
    ("crm_node", CRM_NODE),
    ("corosync-quorumtool", COROSYNC_QUORUMTOOL),
    ("crm_mon", CRM_MON),
    ("crm_standby", CRM_STANDBY),
    ("ceph", CEPH),
    ("kubectl", KUBECTL),
    ("hostname", HOSTNAME),
    ("sleep", SLEEP),
];

// ---------------------------------------------------------------- the bed

/// A temporary directory with the stubs in bin/, their state in stub/, the
/// hook's UMM_STATE_DIR in state/ and the stubs' log in calls.
struct Bed {
    tree: Tree,
}

impl Deref for Bed {
    type Target = Tree;
    fn deref(&self) -> &Tree {
        &self.tree
    }
}

struct Run {
    code: Option<i32>,
    out: String,
    took: Duration,
}

impl Run {
    fn ok(&self) -> &Self {
        assert_eq!(
            self.code,
            Some(0),
            "the hook failed; its output:\n{}",
            self.out
        );
        self
    }

    fn fails(&self) -> &Self {
        assert_eq!(
            self.code,
            Some(1),
            "the hook should fail; its output:\n{}",
            self.out
        );
        self
    }

    fn says(&self, text: &str) -> &Self {
        assert!(
            self.out.contains(text),
            "the output does not say {text:?}:\n{}",
            self.out
        );
        self
    }

    fn never_says(&self, text: &str) -> &Self {
        assert!(
            !self.out.contains(text),
            "the output says {text:?}:\n{}",
            self.out
        );
        self
    }

    /// The row of the table for `first`, its words joined by one space.
    fn row(&self, first: &str) -> Option<String> {
        self.out
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .find(|l| l.starts_with(&format!("{first} ")))
    }
}

impl Bed {
    fn new() -> Bed {
        let bed = Bed { tree: Tree::new() };
        for (name, body) in STUBS {
            bed.executable(&format!("bin/{name}"), &format!("{LOG}{body}"));
        }
        fs::create_dir_all(bed.path("state")).unwrap();
        bed.write("stub/hostname", "node7.example.org\n");
        bed.write("calls", "");
        bed
    }

    /// The logged calls starting with `prefix`, without it.
    fn calls(&self, prefix: &str) -> Vec<String> {
        self.read("calls")
            .lines()
            .filter_map(|l| l.strip_prefix(prefix))
            .map(String::from)
            .collect()
    }

    fn all_calls(&self) -> Vec<String> {
        self.calls("")
    }

    /// Runs an example with the stubs first on PATH.
    fn run(&self, name: &str, phase: &str, env: &[(&str, &str)]) -> Run {
        self.run_with(name, phase, env, true)
    }

    /// Runs an example with only the system's tools on PATH.
    fn run_real(&self, name: &str, phase: &str, env: &[(&str, &str)]) -> Run {
        self.run_with(name, phase, env, false)
    }

    fn run_with(&self, name: &str, phase: &str, env: &[(&str, &str)], stubs: bool) -> Run {
        let path = if stubs {
            format!("{}:{SYSTEM_PATH}", self.path("bin").display())
        } else {
            SYSTEM_PATH.to_string()
        };
        let out_path = self.path("output");
        let out = fs::File::create(&out_path).unwrap();
        let mut cmd = Command::new(example(name));
        cmd.env_clear()
            .env("PATH", path)
            .env("HOME", self.root())
            .env("LC_ALL", "C")
            .env("UMM_PHASE", phase)
            .env("UMM_REASON", "manual")
            .env("UMM_STATE_DIR", self.path("state"))
            .env("STUB", self.path("stub"))
            .env("STUB_LOG", self.path("calls"))
            .envs(env.iter().copied())
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out);
        let started = Instant::now();
        let mut child = cmd.spawn().unwrap();
        let status =
            common::wait_bounded(&mut child, Duration::from_secs(20)).unwrap_or_else(|| {
                panic!(
                    "{name} {phase} hung; its output:\n{}",
                    fs::read_to_string(&out_path).unwrap()
                )
            });
        Run {
            code: status.code(),
            out: fs::read_to_string(&out_path).unwrap(),
            took: started.elapsed(),
        }
    }
}

/// Whether the real `tool` is installed; if not, the test is skipped, or
/// fails if UMM_EXAMPLES_REQUIRE_REAL ("1", "all" or a list of tools) names it.
fn real_tool(tool: &str, package: &str, test: &str) -> bool {
    common::require_tool(test, tool, package, "UMM_EXAMPLES_REQUIRE_REAL").is_some()
}

// ---------------------------------------------------------------- all

#[test]
fn every_example_is_an_executable_sh_script_with_its_header() {
    let readme = fs::read_to_string(example("README.md")).unwrap();
    for name in EXAMPLES {
        let path = example(name);
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o755, 0o755, "{name} is not 0755");
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("#!/bin/sh\n"), "{name}: not a sh script");
        assert!(text.contains("\nset -eu\n"), "{name}: no set -eu");
        for part in ["Install", "Needs:", "Knobs", "Tested here:"] {
            assert!(text.contains(part), "{name}: its header lacks {part:?}");
        }
        let parsed = Command::new("sh").arg("-n").arg(&path).status().unwrap();
        assert!(parsed.success(), "{name} does not parse as sh");
        assert!(
            readme.contains(&format!("| `{name}` |")),
            "README lacks {name}"
        );
    }
}

#[rstest]
#[case("libvirt-guests", &["check", "on", "pre-off", ""])]
#[case("pacemaker-standby", &["on", "pre-off", ""])]
#[case("ceph-noout", &["on", "pre-off", ""])]
#[case("kubernetes-drain", &["check", "on", "pre-off", ""])]
#[case("pacemaker-quorum", &["pre-on", "on", "pre-off", "off", ""])]
#[case("etcd-health", &["pre-on", "on", "pre-off", "off", ""])]
fn phases_an_example_has_no_use_for_do_nothing(#[case] name: &str, #[case] phases: &[&str]) {
    let bed = Bed::new();
    for phase in phases {
        bed.run(name, phase, &[]).ok();
    }
    assert_eq!(bed.all_calls(), Vec::<String>::new());
}

// ---------------------------------------------------------------- libvirt

const VIRSH_SYSTEM: &str = "virsh -c qemu:///system ";

/// web shuts down when asked, db does not, old is off.
fn libvirt_bed() -> Bed {
    let bed = Bed::new();
    bed.write("stub/virsh/dom/web", "running\n");
    bed.write("stub/virsh/obeys/web", "");
    bed.write("stub/virsh/dom/db", "running\n");
    bed.write("stub/virsh/dom/old", "shut off\n");
    bed
}

#[test]
fn libvirt_forces_off_the_guests_that_ignore_shutdown_then_restarts_exactly_the_recorded_ones() {
    let bed = libvirt_bed();
    let run = bed.run(
        "libvirt-guests",
        "pre-on",
        &[("UMM_LIBVIRT_SHUTDOWN_TIMEOUT", "1")],
    );
    run.ok()
        .says("forced off (virsh destroy): 'db'")
        .never_says("'web'\n");
    assert_eq!(bed.calls("sleep "), ["1"], "it did not wait its 1 s");
    assert_eq!(bed.read("state/running"), "db\nweb\n");
    assert_eq!(
        bed.calls(&format!("{VIRSH_SYSTEM}shutdown ")),
        ["db", "web"]
    );
    assert_eq!(bed.calls(&format!("{VIRSH_SYSTEM}destroy ")), ["db"]);
    assert!(
        bed.all_calls()
            .iter()
            .filter(|c| !c.starts_with("sleep "))
            .all(|c| c.starts_with(VIRSH_SYSTEM)),
        "{:?}",
        bed.all_calls()
    );
    assert_eq!(bed.read("stub/virsh/dom/db"), "shut off\n");

    let run = bed.run("libvirt-guests", "off", &[]);
    run.ok();
    assert_eq!(bed.calls(&format!("{VIRSH_SYSTEM}start ")), ["db", "web"]);
    assert_eq!(run.row("db").as_deref(), Some("db running yes"));
    assert_eq!(run.row("web").as_deref(), Some("web running yes"));
    assert_eq!(run.row("old"), None);
    assert_eq!(bed.read("stub/virsh/dom/old"), "shut off\n");

    // Done: a later off phase (say after a crash loop, with no pre-on)
    // starts nothing.
    assert!(!bed.exists("state/running") && bed.exists("state/running.done"));
    bed.write("stub/virsh/dom/db", "shut off\n");
    bed.run("libvirt-guests", "off", &[])
        .ok()
        .says("nothing to start");
    assert_eq!(bed.calls(&format!("{VIRSH_SYSTEM}start ")).len(), 2);
}

#[test]
fn libvirt_stops_waiting_once_every_guest_is_down_and_uses_the_uri() {
    let bed = libvirt_bed();
    bed.write("stub/virsh/obeys/db", "");
    let uri = "qemu+ssh://kvm1/system";
    let run = bed.run(
        "libvirt-guests",
        "pre-on",
        &[
            ("UMM_LIBVIRT_SHUTDOWN_TIMEOUT", "60"),
            ("UMM_LIBVIRT_URI", uri),
        ],
    );
    run.ok()
        .says("every recorded guest is off")
        .never_says("forced");
    assert_eq!(bed.calls("sleep "), [] as [&str; 0], "it waited");
    assert_eq!(bed.read("state/running"), "db\nweb\n");
    assert!(bed.calls(&format!("virsh -c {uri} destroy ")).is_empty());
    let calls = bed.all_calls();
    assert!(!calls.is_empty());
    assert!(
        calls
            .iter()
            .all(|c| c.starts_with(&format!("virsh -c {uri} "))),
        "{calls:?}"
    );
}

#[test]
fn libvirt_off_fails_and_says_so_when_a_guest_does_not_come_back() {
    let bed = libvirt_bed();
    bed.write("state/running", "api\ndb\nweb\n");
    bed.write("stub/virsh/dom/api", "running\n"); // autostarted
    bed.write("stub/virsh/dom/db", "shut off\n");
    bed.write("stub/virsh/broken/db", "");
    bed.write("stub/virsh/dom/web", "shut off\n");
    let run = bed.run("libvirt-guests", "off", &[]);
    run.fails().says("did not come back");
    assert_eq!(bed.calls(&format!("{VIRSH_SYSTEM}start ")), ["db", "web"]);
    assert_eq!(run.row("api").as_deref(), Some("api running yes"));
    assert_eq!(run.row("db").as_deref(), Some("db shut off no"));
    assert_eq!(run.row("web").as_deref(), Some("web running yes"));
    assert_eq!(run.row("DOMAIN").as_deref(), Some("DOMAIN STATE BACK"));
}

#[test]
fn libvirt_pre_on_fails_when_virsh_cannot_list_the_guests() {
    let bed = libvirt_bed();
    bed.write("stub/virsh/down", "");
    let run = bed.run("libvirt-guests", "pre-on", &[]);
    assert_ne!(run.code, Some(0), "{}", run.out);
    run.says("failed to connect");
    assert!(!bed.exists("state/running"));
    assert!(bed.calls(&format!("{VIRSH_SYSTEM}shutdown ")).is_empty());
}

/// libvirt's test driver: a node with two running guests (one with a space
/// in its name) and one shut off. Each virsh call starts again from this
/// file, so a shutdown, destroy or start is forgotten by the next call.
const TEST_DRIVER_NODE: &str = r#"<node>
  <domain type="test">
    <name>alpha</name>
    <memory>8192</memory>
    <os><type>hvm</type></os>
  </domain>
  <domain type="test">
    <name>beta gamma</name>
    <memory>8192</memory>
    <os><type>hvm</type></os>
  </domain>
  <domain type="test" xmlns:test="http://libvirt.org/schemas/domain/test/1.0">
    <name>idle</name>
    <memory>8192</memory>
    <os><type>hvm</type></os>
    <test:runstate>5</test:runstate>
  </domain>
</node>
"#;

#[test]
fn libvirt_against_the_real_virsh_and_its_test_driver() {
    if !real_tool(
        "virsh",
        "libvirt-clients",
        "libvirt_against_the_real_virsh_and_its_test_driver",
    ) {
        return;
    }
    let bed = Bed::new();
    bed.write("node.xml", TEST_DRIVER_NODE);
    let uri = format!("test://{}", bed.path("node.xml").display());
    let env = [
        ("UMM_LIBVIRT_URI", uri.as_str()),
        ("UMM_LIBVIRT_SHUTDOWN_TIMEOUT", "1"),
    ];
    // The real list: exactly the running guests, its empty last line dropped.
    // The driver forgets the shutdowns, so both are forced off after the
    // wait, and the real virsh destroy succeeds.
    let run = bed.run_real("libvirt-guests", "pre-on", &env);
    run.ok()
        .says("is being shutdown")
        .says("forced off (virsh destroy): 'alpha' 'beta gamma'");
    assert!(run.took >= Duration::from_secs(1));
    assert_eq!(bed.read("state/running"), "alpha\nbeta gamma\n");

    // Both are running again on a new connection: nothing to start, the real
    // domstate says running.
    let run = bed.run_real("libvirt-guests", "off", &env);
    run.ok().never_says("Domain 'alpha' started");
    assert_eq!(run.row("alpha").as_deref(), Some("alpha running yes"));
    assert_eq!(run.row("beta").as_deref(), Some("beta gamma running yes"));

    // A recorded guest that is shut off: the real start succeeds but the
    // driver forgets it, so the real domstate says "shut off"; one that no
    // longer exists cannot be started nor asked.
    bed.write("state/running", "alpha\nidle\nghost\n");
    let run = bed.run_real("libvirt-guests", "off", &env);
    run.fails()
        .says("Domain 'idle' started")
        .says("failed to get domain 'ghost'");
    assert_eq!(run.row("alpha").as_deref(), Some("alpha running yes"));
    assert_eq!(run.row("idle").as_deref(), Some("idle shut off no"));
    assert_eq!(run.row("ghost").as_deref(), Some("ghost unknown no"));
}

// ---------------------------------------------------------------- pacemaker

fn pacemaker_bed(nodes: &str) -> Bed {
    let bed = Bed::new();
    bed.write("stub/crm/name", "n1\n");
    bed.write("stub/crm/nodes", nodes);
    bed
}

#[rstest]
#[case::another_node_up("n1 true false 2\nn2 true false 1\nn3 false false 0\n", true)]
#[case::the_other_in_standby("n1 true false 2\nn2 true true 0\nn3 false false 0\n", false)]
#[case::the_only_node("n1 true false 2\n", false)]
fn pacemaker_check_refuses_the_last_node_out_of_standby(#[case] nodes: &str, #[case] ok: bool) {
    let bed = pacemaker_bed(nodes);
    let run = bed.run("pacemaker-standby", "check", &[]);
    if ok {
        run.ok().says("1 other node(s) online and out of standby");
    } else {
        run.fails()
            .says("refusing: n1 is the last online cluster node out of standby");
    }
    assert_eq!(
        bed.all_calls(),
        ["crm_node -n", "crm_mon --one-shot --output-as=xml"]
    );
}

#[test]
fn pacemaker_check_refuses_when_the_cluster_cannot_be_asked() {
    let bed = pacemaker_bed("n1 true false 2\nn2 true false 1\n");
    bed.write("stub/crm/down", "");
    bed.run("pacemaker-standby", "check", &[])
        .fails()
        .says("cannot read the cluster's state");
    fs::remove_file(bed.path("stub/crm/down")).unwrap();
    fs::remove_file(bed.path("stub/crm/name")).unwrap();
    bed.run("pacemaker-standby", "check", &[])
        .fails()
        .says("crm_node -n");
    // A name the cluster does not know.
    bed.run(
        "pacemaker-standby",
        "check",
        &[("UMM_PACEMAKER_NODE", "other")],
    )
    .fails()
    .says("node 'other' is not in crm_mon's output");
}

#[test]
fn pacemaker_puts_the_node_in_standby_waits_for_its_resources_and_takes_it_out_after() {
    let bed = pacemaker_bed("n1 true false 2\nn2 true false 0\n");
    bed.write("stub/crm/moves", "");
    let run = bed.run("pacemaker-standby", "pre-on", &[]);
    run.ok().says("n1 is in standby and runs no resource");
    // The resources left with the standby: it never waited for them.
    assert_eq!(bed.calls("sleep "), [] as [&str; 0], "it waited");
    assert_eq!(
        bed.calls("crm_standby "),
        ["--node n1 --update on --lifetime forever"]
    );
    assert_eq!(
        bed.read("stub/crm/nodes"),
        "n1 true true 0\nn2 true false 0\n"
    );
    // off needs no cluster name: the node is the one pre-on recorded.
    fs::remove_file(bed.path("stub/crm/name")).unwrap();
    bed.run("pacemaker-standby", "off", &[])
        .ok()
        .says("n1 taken out of standby");
    assert_eq!(
        bed.calls("crm_standby "),
        [
            "--node n1 --update on --lifetime forever",
            "--node n1 --update off --lifetime forever"
        ]
    );
    assert_eq!(
        bed.read("stub/crm/nodes"),
        "n1 true false 0\nn2 true false 0\n"
    );
}

#[test]
fn pacemaker_pre_on_fails_when_the_resources_stay_and_leaves_the_node_in_standby() {
    let bed = pacemaker_bed("n1 true false 2\nn2 true false 0\n");
    // 3 s, not 1: the hook's deadline is in whole seconds (`date +%s`), so
    // with 1 s a second boundary right after it is set ended the wait before
    // the first sleep (seen on a loaded machine).
    let run = bed.run(
        "pacemaker-standby",
        "pre-on",
        &[("UMM_PACEMAKER_TIMEOUT", "3")],
    );
    run.fails()
        .says("n1 still runs 2 resource(s) after 3s; it stays in standby");
    assert!(!bed.calls("sleep ").is_empty(), "it did not wait");
    assert!(
        bed.calls("crm_mon ").len() >= 2,
        "it did not poll again after waiting"
    );
    assert_eq!(
        bed.read("stub/crm/nodes"),
        "n1 true true 2\nn2 true false 0\n"
    );
    // Still this hook's standby: an off phase takes it out.
    bed.run("pacemaker-standby", "off", &[]).ok();
    assert_eq!(
        bed.read("stub/crm/nodes"),
        "n1 true false 2\nn2 true false 0\n"
    );
}

#[test]
fn pacemaker_leaves_a_standby_it_did_not_set() {
    let bed = pacemaker_bed("n1 true true 0\nn2 true false 3\n");
    bed.run("pacemaker-standby", "pre-on", &[])
        .ok()
        .says("n1 was already in standby");
    bed.run("pacemaker-standby", "off", &[])
        .ok()
        .says("did not put");
    assert!(bed.calls("crm_standby").is_empty());
    assert_eq!(
        bed.read("stub/crm/nodes"),
        "n1 true true 0\nn2 true false 3\n"
    );
}

/// A CIB for Pacemaker's tools to read without a cluster: n1 runs a Dummy
/// resource (its history says so), n2 is online, n3 offline.
const CIB: &str = r#"<cib crm_feature_set="3.0.14" validate-with="pacemaker-3.0" epoch="1" num_updates="0" admin_epoch="0" have-quorum="1" dc-uuid="1">
  <configuration>
    <crm_config>
      <cluster_property_set id="cib-bootstrap-options">
        <nvpair id="opt-stonith" name="stonith-enabled" value="false"/>
      </cluster_property_set>
    </crm_config>
    <nodes>
      <node id="1" uname="n1"/>
      <node id="2" uname="n2"/>
      <node id="3" uname="n3"/>
    </nodes>
    <resources>
      <primitive id="dummy" class="ocf" provider="pacemaker" type="Dummy"/>
    </resources>
    <constraints/>
  </configuration>
  <status>
    <node_state id="1" uname="n1" in_ccm="true" crmd="online" join="member" expected="member">
      <lrm id="1">
        <lrm_resources>
          <lrm_resource id="dummy" class="ocf" provider="pacemaker" type="Dummy">
            <lrm_rsc_op id="dummy_last_0" operation_key="dummy_start_0" operation="start" crm-debug-origin="test" crm_feature_set="3.0.14" transition-key="1:1:0:aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa" transition-magic="0:0;1:1:0:aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa" call-id="5" rc-code="0" op-status="0" interval="0" exec-time="1" queue-time="0" op-digest="x"/>
          </lrm_resource>
        </lrm_resources>
      </lrm>
    </node_state>
    <node_state id="2" uname="n2" in_ccm="true" crmd="online" join="member" expected="member"/>
    <node_state id="3" uname="n3" in_ccm="false" crmd="offline" join="down" expected="down"/>
  </status>
</cib>
"#;

#[test]
fn pacemaker_against_the_real_crm_mon_and_crm_standby_on_a_cib_file() {
    let test = "pacemaker_against_the_real_crm_mon_and_crm_standby_on_a_cib_file";
    if !real_tool("crm_mon", "pacemaker-cli-utils", test)
        || !real_tool("crm_standby", "pacemaker-cli-utils", test)
    {
        return;
    }
    let bed = Bed::new();
    bed.write("cib.xml", CIB);
    let cib = bed.path("cib.xml");
    let cib_s = cib.to_str().unwrap();
    let env = [
        ("CIB_file", cib_s),
        ("UMM_PACEMAKER_NODE", "n1"),
        ("UMM_PACEMAKER_TIMEOUT", "1"),
    ];
    let standby = |node: &str, value: &str| {
        let st = Command::new("crm_standby")
            .args(["--node", node, "--update", value])
            .env("CIB_file", &cib)
            .env("PATH", SYSTEM_PATH)
            .output()
            .unwrap();
        assert!(st.status.success(), "{st:?}");
    };
    let standby_of = |id: &str| {
        let text = fs::read_to_string(&cib).unwrap();
        ["on", "off"].into_iter().find(|v| {
            text.contains(&format!(
                "id=\"nodes-{id}-standby\" name=\"standby\" value=\"{v}\""
            ))
        })
    };

    bed.run_real("pacemaker-standby", "check", &env)
        .ok()
        .says("1 other node(s) online and out of standby");
    standby("n2", "on");
    bed.run_real("pacemaker-standby", "check", &env)
        .fails()
        .says("n1 is the last online cluster node out of standby");
    standby("n2", "off");

    // No cluster acts on the CIB file, so the resource stays on n1.
    let run = bed.run_real("pacemaker-standby", "pre-on", &env);
    run.fails().says("n1 still runs 1 resource(s) after 1s");
    assert_eq!(standby_of("1"), Some("on"));

    // The "cluster" moves it: its history on n1 goes.
    let text = fs::read_to_string(&cib).unwrap();
    let (start, end) = (
        text.find("<lrm id=\"1\">").unwrap(),
        text.find("</lrm>").unwrap(),
    );
    fs::write(
        &cib,
        format!("{}{}", &text[..start], &text[end + "</lrm>".len()..]),
    )
    .unwrap();
    bed.run_real("pacemaker-standby", "pre-on", &env)
        .ok()
        .says("n1 is in standby and runs no resource");
    bed.run_real("pacemaker-standby", "off", &env)
        .ok()
        .says("n1 taken out of standby");
    assert_eq!(standby_of("1"), Some("off"));
}

// ---------------------------------------------------------------- pacemaker-quorum

/// `corosync-quorumtool -s` as corosync 3.1 prints it: `present` votes of
/// `expected`, `quorum` needed, this node (id 1) with `mine` votes.
fn corosync_status(present: u32, quorum: u32, mine: u32) -> String {
    let mut s = format!(
        "Quorum information\n------------------\nDate:             Mon Dec  7 18:00:00 2026\n\
         Quorum provider:  corosync_votequorum\nNodes:            {present}\nNode ID:          1\n\
         Ring ID:          1.10\nQuorate:          Yes\n\nVotequorum information\n\
         ----------------------\nExpected votes:   3\nHighest expected: 3\n\
         Total votes:      {present}\nQuorum:           {quorum}  \nFlags:            Quorate \n\n\
         Membership information\n----------------------\n    Nodeid      Votes Name\n\
                  1          {mine} node7 (local)\n"
    );
    for id in 2..=present {
        s.push_str(&format!("         {id}          1 node{id}\n"));
    }
    s
}

#[rstest]
// (crm_node -q, corosync -s exit status, votes present, quorum, this node's votes, ok, says)
#[case::three_of_three(
    Some("1"),
    0,
    3,
    2,
    1,
    true,
    "quorate: 3 votes, quorum 2, 2 left without this node"
)]
#[case::two_node_cluster(Some("1"), 0, 2, 1, 1, true, "quorate: 2 votes, quorum 1, 1 left")]
#[case::one_down_already(
    Some("1"),
    0,
    2,
    2,
    1,
    false,
    "without this node's 1 vote(s) the cluster would have 1 of the 2 votes quorum needs"
)]
#[case::heavy_node(
    Some("1"),
    0,
    4,
    3,
    2,
    false,
    "without this node's 2 vote(s) the cluster would have 2 of the 3 votes"
)]
#[case::pacemaker_no_quorum(
    Some("0"),
    0,
    3,
    2,
    1,
    false,
    "this cluster partition has no quorum (crm_node -q: 0)"
)]
#[case::corosync_not_quorate(
    Some("1"),
    2,
    1,
    2,
    1,
    false,
    "corosync says this partition is not quorate"
)]
#[case::pacemaker_not_running(
    None,
    0,
    3,
    2,
    1,
    false,
    "cannot ask Pacemaker for quorum (crm_node -q failed)"
)]
fn pacemaker_quorum_vetoes_unless_the_cluster_keeps_quorum_without_this_node(
    #[case] crm_quorum: Option<&str>,
    #[case] corosync_rc: u8,
    #[case] present: u32,
    #[case] quorum: u32,
    #[case] mine: u32,
    #[case] ok: bool,
    #[case] says: &str,
) {
    let bed = Bed::new();
    if let Some(q) = crm_quorum {
        bed.write("stub/crm/quorum", &format!("{q}\n"));
    }
    bed.write(
        "stub/corosync/status",
        &corosync_status(present, quorum, mine),
    );
    bed.write("stub/corosync/rc", &corosync_rc.to_string());
    let run = bed.run("pacemaker-quorum", "check", &[]);
    if ok {
        run.ok().says(says);
    } else {
        run.fails().says(&format!("refusing: {says}"));
        assert_eq!(run.out.trim().lines().count(), 1, "{}", run.out);
    }
}

#[test]
fn pacemaker_quorum_refuses_in_one_line_when_corosync_cannot_be_read() {
    let bed = Bed::new();
    bed.write("stub/crm/quorum", "1\n");
    let run = bed.run("pacemaker-quorum", "check", &[]);
    run.fails()
        .says("refusing: cannot read corosync's quorum (corosync-quorumtool -s: Cannot initialize CMAP service)");
    assert_eq!(run.out.trim().lines().count(), 1, "{}", run.out);
    bed.write("stub/corosync/status", "Quorum information\n");
    bed.run("pacemaker-quorum", "check", &[])
        .fails()
        .says("cannot read the votes in corosync-quorumtool -s");
}

/// The real tools, with no cluster running on this machine: the gate stays
/// closed and says which tool could not be asked.
#[test]
fn pacemaker_quorum_against_the_real_tools_with_no_cluster_refuses() {
    let test = "pacemaker_quorum_against_the_real_tools_with_no_cluster_refuses";
    if !real_tool("crm_node", "pacemaker-cli-utils", test)
        || !real_tool("corosync-quorumtool", "corosync", test)
    {
        return;
    }
    let bed = Bed::new();
    let run = bed.run_real("pacemaker-quorum", "check", &[]);
    run.fails()
        .says("refusing: cannot ask Pacemaker for quorum (crm_node -q failed)");
    assert_eq!(run.out.trim().lines().count(), 1, "{}", run.out);
}

// ---------------------------------------------------------------- etcd-health

/// Against a real etcd on loopback: healthy with every member up; one of
/// three members killed (by PID) closes the gate naming it; nothing
/// answering closes it too. Each refusal is one line.
#[test]
fn etcd_health_against_a_real_etcd_on_loopback() {
    let test = "etcd_health_against_a_real_etcd_on_loopback";
    if !real_tool("etcdctl", "etcd-client", test) {
        return;
    }
    let Some(bin) = common::etcd::etcd_binary(test) else {
        return;
    };
    let bed = Bed::new();
    let mut etcd = common::etcd::Etcds::start(bin, 3, None);
    let endpoint = etcd.endpoint(0);
    let env = [
        ("ETCDCTL_ENDPOINTS", endpoint.as_str()),
        ("UMM_ETCD_TIMEOUT", "2"),
    ];
    bed.run_real("etcd-health", "check", &env)
        .ok()
        .says("etcd healthy: 3 member(s)");
    etcd.kill(2);
    let run = bed.run_real("etcd-health", "check", &env);
    run.fails().says(&format!(
        "refusing: etcd is not healthy ({endpoint}): {} is unhealthy",
        etcd.endpoint(2)
    ));
    assert_eq!(run.out.trim().lines().count(), 1, "{}", run.out);
    etcd.kill(0);
    etcd.kill(1);
    let run = bed.run_real("etcd-health", "check", &env);
    run.fails().says(&format!(
        "refusing: etcd is not healthy ({endpoint}): Error: "
    ));
    assert_eq!(run.out.trim().lines().count(), 1, "{}", run.out);
}

// ---------------------------------------------------------------- ceph

const CEPH_CALL: &str = "ceph --connect-timeout 30 ";

#[test]
fn ceph_check_asks_whether_this_hosts_osds_may_stop() {
    let bed = Bed::new();
    bed.write("stub/ceph/tree-node7", "3\n7\n12\n");
    bed.run("ceph-noout", "check", &[])
        .ok()
        .says("the OSDs of node7 (3 7 12) are ok to stop");
    assert_eq!(
        bed.calls(CEPH_CALL),
        ["osd ls-tree node7", "osd ok-to-stop 3 7 12"]
    );
}

#[test]
fn ceph_check_vetoes_with_cephs_reason() {
    let bed = Bed::new();
    bed.write("stub/ceph/tree-node7", "3\n7\n");
    bed.write("stub/ceph/unsafe", "");
    bed.run("ceph-noout", "check", &[])
        .fails()
        .says("refusing")
        .says("17 PGs are or would become offline");
}

#[test]
fn ceph_check_and_the_crush_host() {
    let bed = Bed::new();
    // This host's short name is no CRUSH bucket: refused, nothing asked.
    bed.run("ceph-noout", "check", &[])
        .fails()
        .says("cannot list the OSDs under CRUSH bucket 'node7'")
        .says("UMM_CEPH_HOST");
    assert!(bed.calls(&format!("{CEPH_CALL}osd ok-to-stop")).is_empty());
    // Named by UMM_CEPH_HOST, with a connect timeout.
    bed.write("stub/ceph/tree-osd-a", "5\n");
    bed.run(
        "ceph-noout",
        "check",
        &[
            ("UMM_CEPH_HOST", "osd-a"),
            ("UMM_CEPH_CONNECT_TIMEOUT", "5"),
        ],
    )
    .ok();
    assert_eq!(
        bed.calls("ceph --connect-timeout 5 "),
        ["osd ls-tree osd-a", "osd ok-to-stop 5"]
    );
    // A host without OSDs has nothing to ask.
    bed.write("stub/ceph/tree-node7", "");
    bed.write("stub/ceph/unsafe", "");
    bed.run("ceph-noout", "check", &[])
        .ok()
        .says("nothing to check");
    assert_eq!(bed.calls(&format!("{CEPH_CALL}osd ok-to-stop")).len(), 0);
}

#[rstest]
#[case::not_set_before(false)]
#[case::set_before_by_someone_else(true)]
fn ceph_unsets_noout_only_if_it_set_it(#[case] set_before: bool) {
    let bed = Bed::new();
    let before = if set_before {
        "noout,sortbitwise"
    } else {
        "sortbitwise"
    };
    bed.write("stub/ceph/flags", &format!("{before}\n"));
    bed.run("ceph-noout", "pre-on", &[]).ok();
    assert!(bed.read("stub/ceph/flags").contains("noout"));
    let sets = bed.calls(&format!("{CEPH_CALL}osd set"));
    assert_eq!(sets.len(), usize::from(!set_before), "{sets:?}");
    let run = bed.run("ceph-noout", "off", &[]);
    run.ok();
    let unsets = bed.calls(&format!("{CEPH_CALL}osd unset"));
    if set_before {
        run.says("did not set noout");
        assert!(unsets.is_empty());
    } else {
        assert_eq!(unsets, [" noout"]);
    }
    assert_eq!(bed.read("stub/ceph/flags"), format!("{before}\n"));
}

#[test]
fn ceph_a_failed_set_is_not_undone() {
    let bed = Bed::new();
    bed.write("stub/ceph/flags", "sortbitwise\n");
    bed.write("stub/ceph/readonly", "");
    bed.run("ceph-noout", "pre-on", &[])
        .fails()
        .says("access denied")
        .says("could not set noout");
    bed.run("ceph-noout", "off", &[]).ok();
    assert!(bed.calls(&format!("{CEPH_CALL}osd unset")).is_empty());
}

// ---------------------------------------------------------------- kubernetes

#[rstest]
#[case::defaults(&[], "node7.example.org", "240s", "/root/.kube/config")]
#[case::knobs(
    &[("UMM_K8S_NODE", "worker-3"), ("UMM_K8S_DRAIN_TIMEOUT", "30s"), ("UMM_K8S_KUBECONFIG", "/etc/kubernetes/admin.conf")],
    "worker-3", "30s", "/etc/kubernetes/admin.conf"
)]
fn kubernetes_cordons_drains_and_uncordons_the_node(
    #[case] env: &[(&str, &str)],
    #[case] node: &str,
    #[case] timeout: &str,
    #[case] kubeconfig: &str,
) {
    let bed = Bed::new();
    bed.write(&format!("stub/k8s/node-{node}"), "");
    bed.run("kubernetes-drain", "pre-on", env)
        .ok()
        .says(&format!("{node} cordoned and drained"));
    assert_eq!(
        bed.calls("kubectl "),
        [
            format!("get node {node} -o jsonpath={{.spec.unschedulable}}"),
            format!("cordon {node}"),
            format!("drain {node} --ignore-daemonsets --delete-emptydir-data --timeout={timeout}"),
        ]
    );
    assert_eq!(bed.read(&format!("stub/k8s/node-{node}")), "true\n");
    assert_eq!(bed.read("stub/k8s/kubeconfig"), format!("{kubeconfig}\n"));
    bed.run("kubernetes-drain", "off", env).ok();
    assert_eq!(
        bed.calls("kubectl ").last().unwrap(),
        &format!("uncordon {node}")
    );
    assert_eq!(bed.read(&format!("stub/k8s/node-{node}")), "");
}

#[test]
fn kubernetes_a_failed_drain_fails_pre_on_and_leaves_the_node_cordoned() {
    let bed = Bed::new();
    bed.write("stub/k8s/node-node7.example.org", "");
    bed.write("stub/k8s/drain-fails", "");
    bed.run("kubernetes-drain", "pre-on", &[])
        .fails()
        .says("global timeout reached")
        .says("it stays cordoned");
    assert!(bed.calls("kubectl uncordon").is_empty());
    assert_eq!(bed.read("stub/k8s/node-node7.example.org"), "true\n");
    // An unknown node is refused before anything is done.
    bed.run("kubernetes-drain", "pre-on", &[("UMM_K8S_NODE", "nope")])
        .fails()
        .says("cannot get node 'nope'");
    assert!(bed.calls("kubectl cordon nope").is_empty());
}

#[test]
fn kubernetes_leaves_a_cordon_it_did_not_set() {
    let bed = Bed::new();
    bed.write("stub/k8s/node-node7.example.org", "true");
    bed.run("kubernetes-drain", "pre-on", &[])
        .ok()
        .says("already cordoned");
    assert_eq!(bed.calls("kubectl drain ").len(), 1);
    bed.run("kubernetes-drain", "off", &[])
        .ok()
        .says("did not cordon");
    assert!(bed.calls("kubectl uncordon").is_empty());
    assert_eq!(bed.read("stub/k8s/node-node7.example.org"), "true\n");
}

#[test]
fn the_real_kubectl_and_ceph_know_the_flags_the_examples_use() {
    let test = "the_real_kubectl_and_ceph_know_the_flags_the_examples_use";
    let help = |tool: &str, args: &[&str]| {
        let home = tempfile::tempdir().unwrap();
        let out = Command::new(tool)
            .args(args)
            .env_clear()
            .env("PATH", SYSTEM_PATH)
            .env("HOME", home.path())
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
    };
    if real_tool("kubectl", "kubernetes-client", test) {
        let drain = help("kubectl", &["drain", "--help"]);
        for flag in ["--ignore-daemonsets", "--delete-emptydir-data", "--timeout"] {
            assert!(drain.contains(flag), "kubectl drain lacks {flag}:\n{drain}");
        }
        assert!(help("kubectl", &["get", "--help"]).contains("jsonpath"));
        assert!(help("kubectl", &["cordon", "--help"]).contains("unschedulable"));
        assert!(help("kubectl", &["uncordon", "--help"]).contains("schedulable"));
    }
    if real_tool("ceph", "ceph-common", test) {
        let text = help("ceph", &["--help"]);
        assert!(text.contains("--connect-timeout"), "{text}");
    }
}
