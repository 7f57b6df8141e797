// Command custodia is the Custodia server, command-line client and operator
// tool.
package main

import (
	"os"

	"github.com/custodia-project/custodia/internal/cli"
)

func main() { os.Exit(cli.Main()) }
