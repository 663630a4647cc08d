"""ftui's widgets, one feature each (jobs table, key hints, banner, log tail, curves, device bars)."""
