"""Cloud Functions entry points: one per declaration in modelserve/declarations.py.

Deployed once per function from this one source folder (`--entry-point predict_mpg`,
`--entry-point classify_image`, ...). Locally:
    functions-framework --source functions/main.py --target predict_mpg --port 8080

Adding a function is a declaration in modelserve/declarations.py and an entry in Terraform's
map of functions; its entry point appears here by itself.
"""

from modelserve.startup import collector_paused

# Instance-wide: the function this process serves is built (its settings read) at import;
# its model loads on the first request that needs it.
with collector_paused():
    from modelserve.app import entry_points

    globals().update(entry_points())
