local seq = emit(ARGV[3], ARGV[4], ARGV[5])
flush()
return seq
