// DMiloJobs: see README Architecture.
