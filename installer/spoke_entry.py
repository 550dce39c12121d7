"""Entry point of the frozen build: the same as `spoke-client`."""

import sys

from spoke_client.__main__ import main

if __name__ == "__main__":
    sys.exit(main())
