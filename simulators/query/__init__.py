"""One query core: a syntax tree and its evaluator, with a front end per query language."""
