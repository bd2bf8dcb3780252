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
# serial pairs, bc for the summary, chromium and its WebDriver for the web UI's browser tests
# (tests/tests/ui.rs) and scripts/screenshots with a CJK font for the pages. Installing them
# does not start them: each test starts its own on a free loopback port.
FIREGRID_DEBIAN_PACKAGES=(mosquitto mosquitto-clients socat victoria-metrics bc curl chromium chromium-driver
  fonts-wqy-microhei)

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

# stress-ng (Debian), the load of `scripts/test --stress`: only that mode installs it.
setup_stress_ng() {
  local saved=("${FIREGRID_DEBIAN_PACKAGES[@]}")
  FIREGRID_DEBIAN_PACKAGES=(stress-ng)
  setup_debian_packages
  FIREGRID_DEBIAN_PACKAGES=("${saved[@]}")
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

# PyPI's pymodbus, a Modbus server this project did not write, in a venv of Debian's python3
# under the cache dir (kept between runs). Exports FIREGRID_PYTHON, the venv's interpreter,
# which the gateway's Modbus test requires (gateway/tests/modbus.rs).
FIREGRID_PYMODBUS_VERSION=3.16.1

setup_pymodbus() {
  local venv="${XDG_CACHE_HOME:-$HOME/.cache}/firegrid/venv"
  local py=/usr/bin/python3
  if [ ! -x "$py" ] || ! "$py" -c 'import venv, ensurepip' >/dev/null 2>&1; then
    echo "setup: installing Debian's python3 and python3-venv"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
      python3 python3-venv >/dev/null
  fi
  if ! "$venv/bin/python" -c "import pymodbus, sys; sys.exit(pymodbus.__version__ != '$FIREGRID_PYMODBUS_VERSION')" \
      >/dev/null 2>&1; then
    echo "setup: installing pymodbus $FIREGRID_PYMODBUS_VERSION in $venv"
    rm -rf "$venv"
    mkdir -p "$(dirname "$venv")"
    "$py" -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check \
      "pymodbus==$FIREGRID_PYMODBUS_VERSION"
  fi
  export FIREGRID_PYTHON="$venv/bin/python"
}

# PyPI's schemathesis, an API fuzzer this project did not write, and openapi-spec-validator, in a
# venv of its own beside pymodbus's (kept between runs). Exports FIREGRID_SCHEMATHESIS, the
# venv's `schemathesis` command, which the API fuzz test requires (tests/tests/api_fuzz.rs);
# the validator is the venv's `openapi-spec-validator` beside it.
FIREGRID_SCHEMATHESIS_VERSION=4.32.5
FIREGRID_OPENAPI_VALIDATOR_VERSION=0.9.0

setup_schemathesis() {
  setup_pymodbus # Debian's python3 and python3-venv
  local venv="${XDG_CACHE_HOME:-$HOME/.cache}/firegrid/venv-schemathesis"
  if ! "$venv/bin/python" -c "
import sys, importlib.metadata as m
sys.exit(m.version('schemathesis') != '$FIREGRID_SCHEMATHESIS_VERSION'
         or m.version('openapi-spec-validator') != '$FIREGRID_OPENAPI_VALIDATOR_VERSION')" \
      >/dev/null 2>&1; then
    echo "setup: installing schemathesis $FIREGRID_SCHEMATHESIS_VERSION in $venv"
    rm -rf "$venv"
    mkdir -p "$(dirname "$venv")"
    /usr/bin/python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check \
      "schemathesis==$FIREGRID_SCHEMATHESIS_VERSION" \
      "openapi-spec-validator==$FIREGRID_OPENAPI_VALIDATOR_VERSION"
  fi
  export FIREGRID_SCHEMATHESIS="$venv/bin/schemathesis"
}
