"""The CI services a run may be inside (GitHub Actions, GitLab CI, Azure Pipelines): detecting one from its
environment, and the plain text each one reads (step outputs, a dotenv file, logging commands, a Markdown
summary, annotations, log groups). Pure over plain data (the typed run report, pipeline.report), so the run
and the CLI share it.

Example:
    ci = detect(os.environ)                         # None outside CI
    if ci is not None and ci.output_file:
        append_text(ci.output_file, github_output_text(outputs(report)))
"""

from pipeline.ci.environment import CiEnvironment, Provider, checkout_of, detect

__all__ = ["CiEnvironment", "Provider", "checkout_of", "detect"]
