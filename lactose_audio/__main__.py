import sys

from lactose_audio.cli import main

if __name__ == "__main__":  # a spawned worker process imports this module: do nothing then
    sys.exit(main())
