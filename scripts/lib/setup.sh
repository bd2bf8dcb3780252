# Sourced by scripts/*: installs what a fresh machine lacks. Each function is quiet when
# everything is already there.

# The Rust target and components the checks need (the toolchain itself comes with the machine).
setup_rust() {
  if ! rustup target list --installed | grep -qx thumbv7em-none-eabihf; then
    echo "setup: adding Rust target thumbv7em-none-eabihf"
    rustup target add thumbv7em-none-eabihf
  fi
  local c
  for c in rustfmt clippy; do
    rustup component list --installed | grep -q "^$c" || rustup component add "$c"
  done
}

# Debian packages the tests use: real servers (Mosquitto, VictoriaMetrics), socat for RTU
# serial pairs, bc for the summary. Installing them does not start them: each test starts its
# own on a free loopback port.
FIREGRID_DEBIAN_PACKAGES=(mosquitto mosquitto-clients socat victoria-metrics bc curl)

setup_debian_packages() {
  local missing=() p
  for p in "${FIREGRID_DEBIAN_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "setup: installing Debian packages: ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
}

# cargo-fuzz on the nightly toolchain, for the fuzz targets.
setup_cargo_fuzz() {
  if ! rustup toolchain list | grep -q '^nightly'; then
    echo "setup: installing the nightly toolchain (for cargo fuzz)"
    rustup toolchain install nightly --profile minimal
  fi
  if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "setup: installing cargo-fuzz"
    cargo install cargo-fuzz --locked --quiet
  fi
}
