#!/usr/bin/env bash
# Re-vendors axe-core (the accessibility engine the browser tests run in
# chromium, app/a11y_browser_test.go) from the npm registry. Test-only: it
# is never embedded in the binary or served.
#
#   app/testdata/axe/vendor.sh          fetch axe-core@$AXE_VERSION with `npm pack`,
#                                       check the tarball against npm's integrity,
#                                       copy axe.min.js and LICENSE, rewrite SHA256SUMS
#   app/testdata/axe/vendor.sh --check  verify the committed file (no network)
#
# The Go test checks axe.min.js against SHA256SUMS itself before using it.
set -euo pipefail

AXE_VERSION="4.14.1"
# sha512 of the published tarball (npm's dist.integrity, in hex).
TARBALL_SHA512="1477dafa598d8d065f273d6af302aa203c02e83131707b7fa648cd41bd3d6b734f8c22a0dab86ee6a6f64b8afbe804b214d36db85a2826965edfb3a0b9d546b5"

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [[ "${1:-}" == "--check" ]]; then
	(cd "${here}" && sha256sum --strict -c SHA256SUMS)
	exit 0
fi
tmp="$(mktemp -d)"
trap 'rm -rf "${tmp}"' EXIT
(cd "${tmp}" && npm pack --silent "axe-core@${AXE_VERSION}" >/dev/null)
tarball="${tmp}/axe-core-${AXE_VERSION}.tgz"
echo "${TARBALL_SHA512}  ${tarball}" | sha512sum --strict -c - >/dev/null
tar -xzf "${tarball}" -C "${tmp}" package/axe.min.js package/LICENSE
cp "${tmp}/package/axe.min.js" "${tmp}/package/LICENSE" "${here}/"
(cd "${here}" && sha256sum axe.min.js >SHA256SUMS)
echo "vendored axe-core ${AXE_VERSION}"
