print("dmilo-quantize: not yet built")
