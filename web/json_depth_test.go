package web

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestJSONDepthRefused keeps what the second attack run found held: a JSON body
// nested deeper than any request needs, inside the size limit, is a 400 that names the
// problem, not a 500 or a crash, and the server answers the next request.
func TestJSONDepthRefused(t *testing.T) {
	t.Parallel()
	f := newAPIFixture(t)
	for _, open := range []string{"[", `{"a":`} {
		closeWith := "]"
		if open != "[" {
			closeWith = "}"
		}
		depth := 20000
		if len(open) > 1 {
			depth = 10500 // {"a": is 5 bytes: stay inside the 64 KiB body limit
		}
		body := `{"display_name":` + strings.Repeat(open, depth) + strings.Repeat(closeWith, depth) + `}`
		if len(body) >= maxJSONBody {
			t.Fatalf("the nested body is %d bytes, over the %d limit: it would test the size limit instead", len(body), maxJSONBody)
		}
		req, _ := http.NewRequest("POST", f.url+"/api/v1/patients", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+f.clinician)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%d levels of %s: %v", depth, open, err)
		}
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(msg), "not valid JSON") {
			t.Errorf("%d levels of %s = %d %.200s, want 400 saying the body is not valid JSON", depth, open, resp.StatusCode, msg)
		}
	}
	var out map[string]any
	if code := f.call(t, "POST", "/api/v1/patients", f.clinician, map[string]any{"display_name": "After the deep ones",
		"birth_date": "2024-01-01", "guardian_phone": "+1 555 0100"}, &out); code != http.StatusCreated {
		t.Errorf("a patient after the deep bodies = %d %v, want 201", code, out)
	}
}
