// DMiloImage: see README Architecture.
//
//   PNGImage (+Reader/Writer)  PNG <-> raw samples through libpng's simplified API; exact 8/16-bit samples
//                              (colour-space chunks ignored, see PNGChunks); header limits before decoding
//   SampleMapping              INTERFACE value convention: sample v of depth b <-> 2v/(2^b-1)-1 model units
//   Metrics                    PSNR / SSIM as scikit-image 0.26 (fixtures from Tools/make_image_fixtures.py)
//   Montage                    montage.png panels and `dmilo sample` grids (RasterCanvas, BitmapFont)
