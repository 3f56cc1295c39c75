package imagestore

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// exiftool finds the exiftool binary. Where tools are required (CI, make test) a missing one
// fails the test; elsewhere the test is skipped with the install hint.
func exiftool(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("exiftool")
	if err == nil {
		return path
	}
	msg := "exiftool not found (Debian/Ubuntu: apt-get install libimage-exiftool-perl)"
	if os.Getenv("CI") != "" || os.Getenv("DERMFOLLOW_REQUIRE_TOOLS") != "" || os.Getenv("DERMFOLLOW_REQUIRE_SERVICES") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg + "; set DERMFOLLOW_REQUIRE_TOOLS=1 to make this a failure")
	return ""
}

// TestExiftoolFindsNothing writes every sanitized fixture to disk and asks exiftool, an
// independent and very thorough reader, what metadata it finds: only structure (dimensions,
// encoding, JFIF density, ICC, Adobe transform) and Orientation may remain, in JPEG, PNG and
// WebP alike.
func TestExiftoolFindsNothing(t *testing.T) {
	t.Parallel()
	tool := exiftool(t)
	dir := t.TempDir()
	fixtures := acceptedFixtures(t)
	var files []string
	for i, f := range fixtures {
		out, _, err := SanitizeBytes(f.data, DefaultLimits())
		if err != nil {
			t.Fatalf("%s: %v", f.name, err)
		}
		name := filepath.Join(dir, fmt.Sprintf("%02d", i))
		if err := os.WriteFile(name, out, 0o600); err != nil {
			t.Fatal(err)
		}
		files = append(files, name)
	}
	raw, err := exec.Command(tool, append([]string{"-a", "-G1", "-s", "-j", "-n"}, files...)...).Output()
	if err != nil {
		t.Fatalf("exiftool: %v", err)
	}
	var results []map[string]any
	if err := json.Unmarshal(raw, &results); err != nil {
		t.Fatalf("exiftool output: %v", err)
	}
	if len(results) != len(files) {
		t.Fatalf("exiftool read %d of %d files", len(results), len(files))
	}
	for _, res := range results {
		i := slices.Index(files, fmt.Sprint(res["SourceFile"]))
		f := fixtures[i]
		text := string(raw)
		for _, s := range f.secrets {
			if strings.Contains(text, s) {
				t.Errorf("%s: exiftool still shows %q", f.name, s)
			}
		}
		for key, val := range res {
			if why := exiftoolForbidden(key); why != "" {
				t.Errorf("%s: exiftool found %s = %v (%s)", f.name, key, val, why)
			}
		}
		// Every format keeps an orientation other than 1, and only then (-n: as a number).
		if got, want := res["IFD0:Orientation"], float64(f.orientation); f.orientation == 1 && got != nil ||
			f.orientation != 1 && got != want {
			t.Errorf("%s: exiftool reads orientation %v, want %d", f.name, got, f.orientation)
		}
	}
}

// exiftoolForbidden says why a "Group:Tag" key must not appear in a sanitized file, or "".
func exiftoolForbidden(key string) string {
	group, tag, _ := strings.Cut(key, ":")
	switch group {
	case "SourceFile", "System":
		return ""
	case "ExifTool":
		if tag == "ExifToolVersion" {
			return ""
		}
		return "a warning: something unexpected is left"
	case "File":
		if tag == "Comment" || strings.Contains(tag, "Trailer") || strings.Contains(tag, "IPTC") {
			return "comment, trailer or IPTC"
		}
		return ""
	case "JFIF":
		if strings.HasPrefix(tag, "Thumbnail") {
			return "JFIF thumbnail"
		}
		return ""
	case "IFD0":
		if tag == "Orientation" {
			return ""
		}
		return "EXIF beyond Orientation"
	case "Adobe", "ICC-header", "ICC_Profile", "ICC-chrm", "ICC-view", "ICC-meas", "PNG-pHYs":
		return ""
	case "Composite":
		if tag == "ImageSize" || tag == "Megapixels" {
			return ""
		}
		return "derived from metadata"
	case "PNG":
		switch tag {
		case "ImageWidth", "ImageHeight", "BitDepth", "ColorType", "Compression", "Filter",
			"Interlace", "ProfileName", "ICC_Profile", "Gamma", "SRGBRendering", "Palette",
			"Transparency", "SignificantBits", "WhitePointX", "WhitePointY", "RedX", "RedY",
			"GreenX", "GreenY", "BlueX", "BlueY":
			return ""
		}
		return "PNG text, time or other metadata"
	case "RIFF":
		switch tag {
		case "WebP_Flags", "ImageWidth", "ImageHeight", "VP8Version", "HorizontalScale",
			"VerticalScale", "AlphaPreprocessing", "AlphaFiltering", "AlphaCompression":
			return ""
		}
		return "WebP metadata"
	}
	return "metadata group not allowed (GPS, EXIF, XMP, IPTC, MPF, maker notes, ...)"
}
