// DMiloImage: see README Architecture.
