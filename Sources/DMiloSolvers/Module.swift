// DMiloSolvers: see README Architecture.
