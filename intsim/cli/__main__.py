"""python -m intsim.cli: the intsim command."""
import sys

from intsim.cli import main

sys.exit(main())
