#!/usr/bin/env bash
# Vendors tus-js-client, the tus protocol's browser client, as the one file the family's page
# loads for resumable uploads: web/static/tus.min.js (the package's own browser bundle, as
# published, with its licence in web/static/tus.min.js.LICENSE). No bundler runs at build time;
# this script is how the file was made, and makes it again byte for byte:
#
#   scripts/vendor-tus-js-client.sh          fetch, check and write the file
#   scripts/vendor-tus-js-client.sh check    fetch and check that the committed file is it
#
# The package comes from the npm registry through npm itself, at a pinned version; its tarball
# must have the registry's published integrity (sha512), and the bundle the SHA-256 recorded
# here when it was vendored. To move to another version, change VERSION and both sums
# (`npm view tus-js-client@VERSION dist.integrity`; the bundle's sum from a first run).
set -euo pipefail

VERSION=4.3.1
INTEGRITY=sha512-ZLeYmjrkaU1fUsKbIi8JML52uAocjEZtBx4DKjRrqzrZa0O4MYwT6db+oqePlspV+FxXJAyFBc/L5gwUi2OFsg==
BUNDLE_SHA256=8cbb1b63fccc3bba0ae73ad1deb160ce046c3750851d0c3e94921ae3ef070eb8

root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/web/static/tus.min.js"
die() { printf 'vendor-tus-js-client: %s\n' "$*" >&2; exit 1; }
command -v npm >/dev/null || die "npm is needed (Debian: apt-get install npm)"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent --pack-destination "$tmp" "tus-js-client@$VERSION" >/dev/null)
tgz="$tmp/tus-js-client-$VERSION.tgz"
[[ -f $tgz ]] || die "npm pack made no tus-js-client-$VERSION.tgz"
got="sha512-$(openssl dgst -sha512 -binary "$tgz" | base64 -w0)"
[[ $got == "$INTEGRITY" ]] || die "the tarball's integrity is $got, not the registry's $INTEGRITY"
tar -xzf "$tgz" -C "$tmp" package/dist/tus.min.js package/LICENSE
bundle="$tmp/package/dist/tus.min.js"
echo "$BUNDLE_SHA256  $bundle" | sha256sum --check --quiet - || die "the bundle's SHA-256 is not the one recorded"

if [[ ${1:-} == check ]]; then
	cmp -s "$bundle" "$out" || die "$out is not tus-js-client $VERSION's bundle"
	echo "vendor-tus-js-client: web/static/tus.min.js is tus-js-client $VERSION"
	exit 0
fi
cp "$bundle" "$out"
{ echo "tus-js-client $VERSION (web/static/tus.min.js), from the npm registry; its licence:"; echo; cat "$tmp/package/LICENSE"; } >"$out.LICENSE"
echo "vendor-tus-js-client: wrote web/static/tus.min.js (tus-js-client $VERSION)"
