//go:build !race

package imagestore

const raceEnabled = false
