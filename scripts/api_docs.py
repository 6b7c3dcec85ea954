"""Write docs/API.md from the API's OpenAPI document (`--check`: exit 1 if it is stale)."""

import sys

from khalex_pay.boot.api_docs import main

sys.exit(main(sys.argv[1:]))
