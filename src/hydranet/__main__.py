"""``python -m hydranet`` (and ``torchrun -m hydranet``) runs the command-line program."""

from .cli.main import main

if __name__ == "__main__":
    raise SystemExit(main())
