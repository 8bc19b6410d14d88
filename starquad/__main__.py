import sys

from starquad.cli import main

sys.exit(main())
