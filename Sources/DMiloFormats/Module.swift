// DMiloFormats: see README Architecture.
