"""Tandem's domain core: models, programme rules, matching, mail rendering. No I/O."""
