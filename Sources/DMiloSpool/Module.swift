// DMiloSpool: see README Architecture.
