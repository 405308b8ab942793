// Row tiling shared by the SIMD GEMM drivers (internal header, not part of the module's API).
#ifndef DMILO_ROW_TILES_H
#define DMILO_ROW_TILES_H

// Runs T(MR) over rows [0, m) of one column block: tiles of MR_MAX rows (4 or 8, the register budget of the ISA),
// then one tile each of 4, 2 and 1 for the remainder. T reads the current first row from `i`; MR is a constant so
// each tile function is specialised for it.
#define DMILO_FOR_ROW_TILES(m, MR_MAX, T)                                                                    \
    do {                                                                                                    \
        long i = 0;                                                                                         \
        for (; i + (MR_MAX) <= (m); i += (MR_MAX)) T(MR_MAX);                                               \
        if ((MR_MAX) > 4 && i + 4 <= (m)) { T(4); i += 4; }                                                 \
        if (i + 2 <= (m)) { T(2); i += 2; }                                                                 \
        if (i < (m)) T(1);                                                                                  \
    } while (0)

// The GEMM drivers' loop nest: column blocks of NB (the tile's vector width; `j` and the valid width `nv` are in
// scope for T), each cut into row tiles as above.
#define DMILO_FOR_TILES(m, n, MR_MAX, NB, T)                                                                 \
    for (long j = 0; j < (n); j += (NB)) {                                                                  \
        long nv = (n) - j;                                                                                  \
        DMILO_FOR_ROW_TILES(m, MR_MAX, T);                                                                  \
    }

#endif
