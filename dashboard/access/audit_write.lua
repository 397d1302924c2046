flush()
add(6)
return 1
