#!/usr/bin/env bash
# Check the generated alert rules with Prometheus's own tools:
#   promtool check rules  - the rules file parses and every expression is valid PromQL (2.42)
#   promtool test rules   - tests/promtool/*.test.yaml: each alert fires, and does not fire early
# Run by `make promtool-test` and by tests/unit/observability/test_promtool.py.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

promtool=${PROMTOOL:-$(command -v promtool || true)}
if [[ -z "$promtool" ]]; then
  echo "promtool-test: promtool not found; run 'sudo bash hack/install-prometheus.sh' (Debian's prometheus package)" >&2
  exit 2
fi

rules=(deploy/monitoring/suanli-rules.yaml)
shopt -s nullglob
tests=(tests/promtool/*.test.yaml)
if [[ ${#tests[@]} -eq 0 ]]; then
  echo "promtool-test: no rule tests under tests/promtool/" >&2
  exit 1
fi

echo "==> promtool check rules ${rules[*]}"
"$promtool" check rules "${rules[@]}"
echo "==> promtool test rules ${tests[*]}"
"$promtool" test rules "${tests[@]}"
