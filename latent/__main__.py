from latent.cli import main

main()
