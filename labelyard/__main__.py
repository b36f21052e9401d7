from labelyard.cli import main

main()
