"""`kdeps eval`: evaluate expressions the way a resource would, for debugging."""

from __future__ import annotations

import sys

import click

from kdeps.cli.common import dump, parse_inputs


@click.command(name="eval")
@click.argument("expressions", nargs=-1)
@click.option("--input", "inputs", multiple=True, metavar="KEY=VALUE",
              help="Request input visible to get() (repeatable); JSON values are decoded.")
def command(expressions: tuple[str, ...], inputs: tuple[str, ...]) -> None:
    """Evaluate each EXPRESSION (or each line of standard input) and print one JSON line each:
    the value, or {"error": "..."}.

    \b
    Example:
      kdeps eval "get('q') != ''" "upper(get('q'))" --input q=hello
    """
    from kdeps.engine.request import RequestData
    from kdeps.engine.scope import RequestState, Scope, agent_env
    from kdeps.errors import KdepsError
    from kdeps.expr import evaluate

    values = parse_inputs(inputs)
    state = RequestState(RequestData(method="POST", body=values, query={}), agent_env(None))
    env = Scope(state, "eval").env()
    sources = expressions or tuple(line for line in sys.stdin.read().splitlines() if line.strip())
    failed = False
    for source in sources:
        try:
            click.echo(dump(evaluate(source, env)))
        except KdepsError as err:
            failed = True
            click.echo(dump({"error": str(err)}))
    raise SystemExit(1 if failed else 0)
