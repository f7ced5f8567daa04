"""``python -m eval_firewall``: the ``eval-firewall`` command."""
from .cli import main

main()
