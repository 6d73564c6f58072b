from kdeps.cli.main import main

main()
