package fix

import (
	"context"
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
)

func TestStalenessClock(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	clock := NewStaleness(0)
	if clock.After != 10*time.Minute {
		t.Fatalf("default grace %s", clock.After)
	}
	a, b := Target{Znode: "/a"}, Target{Znode: "/b"}
	if due := clock.Observe(t0, []Target{a, b}); len(due) != 0 {
		t.Fatalf("due at once: %+v", due)
	}
	if due := clock.Observe(t0.Add(9*time.Minute), []Target{a, b}); len(due) != 0 {
		t.Fatalf("due before the grace period: %+v", due)
	}
	// b stops being stale for one cycle: its clock starts again.
	clock.Observe(t0.Add(9*time.Minute+30*time.Second), []Target{a})
	due := clock.Observe(t0.Add(10*time.Minute), []Target{a, b})
	if len(due) != 1 || due[0].Znode != "/a" {
		t.Fatalf("due at 10m: %+v", due)
	}
	if due := clock.Observe(t0.Add(20*time.Minute), []Target{b, a, a}); len(due) != 2 {
		t.Fatalf("due at 20m: %+v", due)
	}
}

func TestPruneBackupRestore(t *testing.T) {
	c := conn(t)
	root := "/prune/dubbo"
	dir := root + "/com.foo.BarService/providers/"
	stale := dir + providerName
	live := dir + strings.Replace(providerName, "10.244.1.7", "10.244.1.8", 1)
	ephemeral := dir + strings.Replace(providerName, "10.244.1.7", "10.244.1.9", 1)
	changed := dir + strings.Replace(providerName, "10.244.1.7", "10.244.1.10", 1)
	// Binary data and a restrictive ACL: the restore must give both back exactly.
	data := "\x00\x01bin\xff" + strings.Repeat("x", 300)
	acl := []zk.ACL{{Perms: zk.PermRead | zk.PermDelete | zk.PermWrite | zk.PermAdmin, Scheme: "world", ID: "anyone"}}
	put(t, c, live, "", 0)
	put(t, c, stale, data, 0)
	// SetACL is conditional on the ACL version (aversion), 0 for a fresh node.
	if _, err := c.SetACL(stale, acl, 0); err != nil {
		t.Fatal(err)
	}
	put(t, c, ephemeral, "", zk.FlagEphemeral)
	put(t, c, changed, "v0", 0)
	orig := snapshot(t, c, "/prune")

	targets := []Target{
		{Interface: "com.foo.BarService", Address: ap("10.244.1.7:20880"), Znode: stale, Orphan: true},
		{Interface: "com.foo.BarService", Address: ap("10.244.1.8:20880"), Znode: live},                                   // maps to a live pod
		{Interface: "com.foo.BarService", Address: ap("10.244.1.9:20880"), Znode: ephemeral, Orphan: true},                // ephemeral
		{Interface: "com.foo.BarService", Address: ap("10.244.1.10:20880"), Znode: changed, Orphan: true},                 // edited meanwhile
		{Interface: "com.foo.BarService", Address: ap("10.244.1.11:20880"), Znode: dir + "gone", Orphan: true},            // vanished
		{Interface: "com.foo.BarService", Address: ap("10.244.1.12:20880"), Znode: root + "/x/consumers/c", Orphan: true}, // not a provider
		{Interface: "com.foo.BarService", Address: ap("10.244.1.13:20880"), Znode: dir + "dyn", Orphan: true, Dynamic: true},
	}
	clock := NewStaleness(10 * time.Minute)
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	plan, err := PlanPrune(c, true, targets, clock, t0)
	if err != nil || len(plan.Changes) != 0 {
		t.Fatalf("plan at first sight: %v %+v", err, plan)
	}
	plan, err = PlanPrune(c, true, targets, clock, t0.Add(10*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Changes) != 2 || plan.Changes[0].Path != changed || plan.Changes[1].Path != stale || len(plan.Skipped) != 2 {
		t.Fatalf("plan after the grace period: %+v", plan)
	}
	if !reflect.DeepEqual(plan.Changes[1].ACL, acl) || string(plan.Changes[1].Before) != data {
		t.Fatalf("planned backup: %+v", plan.Changes[1])
	}
	// Someone rewrites one entry after the plan: its delete must fail, the other go through.
	if _, err := c.Set(changed, []byte("v1"), 0); err != nil {
		t.Fatal(err)
	}
	orig[changed] = "v1"
	backupDir := t.TempDir()
	ex := &Executor{ZK: c, BackupDir: backupDir, Now: func() time.Time { return t0.Add(10 * time.Minute) }}

	dry := *ex
	dry.DryRun = true
	if _, err := dry.Apply(context.Background(), plan); err != nil {
		t.Fatal(err)
	}
	diff(t, "after the dry run", snapshot(t, c, "/prune"), orig)
	if ents, _ := os.ReadDir(backupDir); len(ents) != 0 {
		t.Fatal("the dry run wrote a backup")
	}

	rep, err := ex.Apply(context.Background(), plan)
	if err != nil || rep.Count(ResultApplied) != 1 || rep.Count(ResultConflict) != 1 {
		t.Fatalf("apply: %v %v", err, results(rep))
	}
	if rep.Backup == "" || rep.RestoreCommand != "dubboreach audit restore --backup "+rep.Backup {
		t.Fatalf("backup %q, restore command %q", rep.Backup, rep.RestoreCommand)
	}
	after := snapshot(t, c, "/prune")
	diff(t, "after prune", after, expect(orig, plan.Changes[1:]))
	if fi, err := os.Stat(rep.Backup); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup file: %v %v", fi, err)
	}

	b, err := ReadBackup(rep.Backup)
	if err != nil {
		t.Fatal(err)
	}
	// The backup holds both planned deletions (written before either was tried); restoring puts
	// back the pruned one and leaves the one that was not deleted (different data) alone.
	res := Restore(c, b)
	got := map[string]string{}
	for _, r := range res {
		got[r.Change.Path] = r.Result
	}
	if got[stale] != ResultApplied || got[changed] != ResultConflict {
		t.Fatalf("restore: %+v", res)
	}
	diff(t, "after restore", snapshot(t, c, "/prune"), orig)
	gotACL, _, err := c.GetACL(stale)
	if err != nil || !reflect.DeepEqual(gotACL, acl) {
		t.Fatalf("restored ACL %+v %v", gotACL, err)
	}
	// Restoring twice changes nothing.
	for _, r := range Restore(c, b) {
		if r.Change.Path == stale && r.Result != ResultSkipped {
			t.Fatalf("second restore: %+v", r)
		}
	}
	diff(t, "after a second restore", snapshot(t, c, "/prune"), orig)
}

func TestPruneRefusesWithoutBackup(t *testing.T) {
	c := conn(t)
	p := "/nobackup/dubbo/com.foo.BarService/providers/" + providerName
	put(t, c, p, "d", 0)
	clock := NewStaleness(time.Minute)
	t0 := time.Now()
	targets := []Target{{Interface: "com.foo.BarService", Znode: p, Orphan: true}}
	if _, err := PlanPrune(c, true, targets, clock, t0); err != nil {
		t.Fatal(err)
	}
	plan, err := PlanPrune(c, true, targets, clock, t0.Add(time.Minute))
	if err != nil || len(plan.Changes) != 1 {
		t.Fatalf("%v %+v", err, plan)
	}
	before := snapshot(t, c, "/nobackup")
	rep, err := (&Executor{ZK: c}).Apply(context.Background(), plan)
	if err != nil || rep.Count(ResultFailed) != 1 {
		t.Fatalf("%v %v", err, results(rep))
	}
	diff(t, "without a backup directory", snapshot(t, c, "/nobackup"), before)
	// An unwritable backup directory fails the same way.
	ro := t.TempDir() + "/file"
	if err := os.WriteFile(ro, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	rep, _ = (&Executor{ZK: c, BackupDir: ro}).Apply(context.Background(), plan)
	if rep.Count(ResultFailed) != 1 {
		t.Fatalf("%v", results(rep))
	}
	diff(t, "with a broken backup directory", snapshot(t, c, "/nobackup"), before)
}

// FuzzParseBackup: no panic; an accepted backup re-encodes to one that parses the same.
func FuzzParseBackup(f *testing.F) {
	good, _ := json.Marshal(Backup{Kind: BackupKind, Version: 1, Entries: []BackupEntry{{Path: "/dubbo/a/providers/x", Name: "x", Data: []byte{0, 1}}}})
	f.Add(good)
	f.Add([]byte(`{"kind":"dubboreach.io/zookeeper-backup","version":1,"entries":[{"path":"/a/../b","name":"b","data":""}]}`))
	f.Add([]byte(`{"kind":"x"}`))
	f.Add([]byte(`{"kind":"dubboreach.io/zookeeper-backup","version":1,"entries":[]} trailing`))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := ParseBackup(data)
		if err != nil {
			return
		}
		again, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		b2, err := ParseBackup(again)
		if err != nil || !reflect.DeepEqual(normalise(b), normalise(b2)) {
			t.Fatalf("re-encoded backup differs: %v", err)
		}
	})
}

func normalise(b Backup) Backup {
	for i := range b.Entries {
		if len(b.Entries[i].Data) == 0 {
			b.Entries[i].Data = nil
		}
		if len(b.Entries[i].ACL) == 0 {
			b.Entries[i].ACL = nil
		}
	}
	return b
}
