//go:build race

package imagestore

// raceEnabled: the race detector slows decoding and resampling about twentyfold, so the tests
// that go through megapixels take smaller photos under it (the same paths).
const raceEnabled = true
