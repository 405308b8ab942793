print("dmilod: not yet built")
