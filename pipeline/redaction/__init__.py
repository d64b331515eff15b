"""Redaction: what must never be shown. One `Redactor` built from every secret a run could know (variables
named like secrets, build secrets from variables and files, the docker config's credentials, notify's
variables) hides them, their base64 forms, URL credentials and JWTs in every text a run or `serve` writes.

    redactor = Redactor.for_run(os.environ, ["NPM_TOKEN"], [Path("token.txt")], Path.home() / ".docker")
    report = redactor.data(report)      # every string in a JSON-like value
    line = redactor.text(line)
"""

from pipeline.redaction.redactor import MASK, Redactor

__all__ = ["MASK", "Redactor"]
