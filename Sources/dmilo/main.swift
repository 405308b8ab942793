print("dmilo: not yet built")
