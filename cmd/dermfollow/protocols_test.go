package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runCmd(t *testing.T, env map[string]string, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err = run(context.Background(), args, mapEnv(env), strings.NewReader(stdin), &out, &errOut)
	return out.String(), errOut.String(), err
}

func TestProtocolsCommands(t *testing.T) {
	t.Parallel()
	out, _, err := runCmd(t, nil, "", "protocols", "list")
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"pws-hemoporfin-pdt", "pdl-vascular-laser", "surgical-wound"} {
		if !strings.Contains(out, id) {
			t.Errorf("protocols list lacks %s:\n%s", id, out)
		}
	}
	out, _, err = runCmd(t, nil, "", "protocols", "show", "pws-hemoporfin-pdt")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"baseline", "+7d", "front"} {
		if !strings.Contains(out, want) {
			t.Errorf("protocols show lacks %q:\n%s", want, out)
		}
	}
	out, _, err = runCmd(t, nil, "", "protocols", "-lang", "zh-CN", "show", "pws-hemoporfin-pdt")
	if err != nil || !strings.Contains(out, "海姆泊芬") {
		t.Errorf("protocols show in Chinese: %v\n%s", err, out)
	}
	if _, _, err := runCmd(t, nil, "", "protocols", "show", "no-such-protocol"); err == nil {
		t.Error("show of an unknown protocol succeeded")
	}

	dir := t.TempDir()
	good, _ := os.ReadFile("../../protocols/shipped/surgical-wound.v1.yaml")
	goodPath := filepath.Join(dir, "good.yaml")
	os.WriteFile(goodPath, good, 0o644)
	badPath := filepath.Join(dir, "bad.yaml")
	os.WriteFile(badPath, []byte("id: x\nversion: 1\nbogus_key: 1\n"), 0o644)
	out, errOut, err := runCmd(t, nil, "", "protocols", "validate", goodPath, badPath)
	if err == nil {
		t.Error("validate with a bad file exited 0")
	}
	if !strings.Contains(out, "good.yaml: ok") || !strings.Contains(errOut, "bad.yaml:3:") {
		t.Errorf("validate output:\n%s\n%s", out, errOut)
	}
	if _, _, err := runCmd(t, nil, "", "protocols", "frob"); err == nil {
		t.Error("unknown subcommand accepted")
	}
}
