package cli

import (
	"github.com/spf13/cobra"
)

func newCompletionCommand(s Streams) *cobra.Command {
	return &cobra.Command{
		Use:   "completion bash|zsh|fish",
		Short: "Print a shell completion script",
		Long: `Completion prints a script that makes your shell complete dockplan's
commands and flags. Load it once per session or install it for good.`,
		Example: `  source <(dockplan completion bash)
  dockplan completion zsh > "${fpath[1]}/_dockplan"
  dockplan completion fish > ~/.config/fish/completions/dockplan.fish`,
		ValidArgs: []string{"bash", "zsh", "fish"},
		Args:      cobra.MatchAll(cobra.ExactArgs(1), cobra.OnlyValidArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			root := cmd.Root()
			switch args[0] {
			case "bash":
				return root.GenBashCompletionV2(s.Out, true)
			case "zsh":
				return root.GenZshCompletion(s.Out)
			default:
				return root.GenFishCompletion(s.Out, true)
			}
		},
	}
}
