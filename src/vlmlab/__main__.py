from vlmlab.cli import main

main()
