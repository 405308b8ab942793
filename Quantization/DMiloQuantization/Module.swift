// DMiloQuantization
