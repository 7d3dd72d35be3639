import sys

from lactose_audio.cli import main

sys.exit(main())
