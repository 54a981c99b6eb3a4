#!/usr/bin/env bash
# Re-vendors htmx from the npm registry into assets/vendor/.
#
#   assets/vendor.sh           fetch htmx.org@$HTMX_VERSION with `npm pack`, copy
#                              dist/htmx.min.js and dist/ext/hx-sse.min.js, and
#                              rewrite assets/vendor/SHA256SUMS
#   assets/vendor.sh --check   verify the committed files against SHA256SUMS
#                              (no network; exits non-zero on any mismatch)
#
# npm is needed only to re-vendor; building and running HossAgent needs no Node.
set -euo pipefail

HTMX_VERSION="4.0.1"
PACKAGE="htmx.org@${HTMX_VERSION}"
# sha512 of the published tarball (npm's dist.integrity, in hex); npm versions
# are immutable, so a different tarball means something is wrong.
TARBALL_SHA512="a05ec98178435bd5170b2fe4d59605510833bbfae6d7d39158f48f34bf75bcf96e0763c1f7e315e79b7241d1ffc3ba361006d36141b94835b547ad2676476a1a"

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
vendor="${here}/vendor"

# tarball path (inside package/) -> vendored file name
files=(
	"dist/htmx.min.js:htmx.min.js"
	"dist/ext/hx-sse.min.js:hx-sse.min.js"
)

usage() {
	echo "usage: $0 [--check]" >&2
	exit 2
}

check() {
	if [[ ! -f "${vendor}/SHA256SUMS" ]]; then
		echo "vendor.sh: ${vendor}/SHA256SUMS is missing" >&2
		exit 1
	fi
	(cd "${vendor}" && sha256sum --strict -c SHA256SUMS)
}

case "${1:-}" in
	"") ;;
	--check) check; exit 0 ;;
	-h|--help) usage ;;
	*) usage ;;
esac

command -v npm >/dev/null || { echo "vendor.sh: npm is required to re-vendor" >&2; exit 1; }

tmp="$(mktemp -d)"
trap 'rm -rf "${tmp}"' EXIT

echo "vendor.sh: fetching ${PACKAGE}" >&2
tarball="$(cd "${tmp}" && npm pack --silent "${PACKAGE}" | tail -n 1)"
if [[ -n "${TARBALL_SHA512}" ]]; then
	echo "${TARBALL_SHA512}  ${tmp}/${tarball}" | sha512sum --quiet --strict -c - || {
		echo "vendor.sh: ${tarball} does not match the pinned sha512 (update TARBALL_SHA512 when bumping HTMX_VERSION)" >&2
		exit 1
	}
fi
tar -xzf "${tmp}/${tarball}" -C "${tmp}"

got="$(sed -n 's/^[[:space:]]*"version":[[:space:]]*"\([^"]*\)".*/\1/p' "${tmp}/package/package.json" | head -n 1)"
if [[ "${got}" != "${HTMX_VERSION}" ]]; then
	echo "vendor.sh: expected htmx ${HTMX_VERSION}, tarball says ${got:-unknown}" >&2
	exit 1
fi

mkdir -p "${vendor}"
names=()
for entry in "${files[@]}"; do
	src="${tmp}/package/${entry%%:*}"
	dst="${entry##*:}"
	if [[ ! -f "${src}" ]]; then
		echo "vendor.sh: ${entry%%:*} not found in ${tarball}" >&2
		exit 1
	fi
	install -m 0644 "${src}" "${vendor}/${dst}"
	names+=("${dst}")
done

(cd "${vendor}" && sha256sum "${names[@]}" > SHA256SUMS)
echo "vendor.sh: vendored ${PACKAGE} into ${vendor}" >&2
cat "${vendor}/SHA256SUMS"
