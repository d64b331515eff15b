"""Redaction: what must never be shown. One `Redactor` built from every secret a run could know (variables
named like secrets, build secrets from variables and files, the docker config's credentials, notify's
variables) hides them, their base64 forms, URL credentials and JWTs in every text a run or `serve` writes.

    redactor = Redactor.for_run(os.environ, ["NPM_TOKEN"], [Path("token.txt")], Path.home() / ".docker")
    report = redactor.data(report)      # every string in a JSON-like value
    text = redactor.text(text)          # its lines as one output: base64 wrapped over them is hidden too
    log = redactor.stream()             # an output that comes a line at a time
    line = log.text(line)
"""

from pipeline.redaction.redactor import MASK, RedactedStream, Redactor

__all__ = ["MASK", "RedactedStream", "Redactor"]
