"""`python -m api …`: the command-line tools of api/cli/."""

from api.cli.commands import main

main()
