package cli

import (
	"encoding/json"
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// Version is dockplan's version, set at build time with
// -ldflags "-X github.com/dockplan/dockplan/cli.Version=v1.2.3".
var Version = "0.1.0-dev"

// versionInfo is what `dockplan version -json` prints.
type versionInfo struct {
	FormatVersion string `json:"format_version"`
	Version       string `json:"version"`
	GoVersion     string `json:"go_version"`
	Platform      string `json:"platform"`
	Revision      string `json:"revision,omitempty"`
}

func newVersionCommand(s Streams) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "version",
		Short:   "Print the dockplan version",
		Example: "  dockplan version\n  dockplan version -json",
		Args:    cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			info := currentVersion()
			if asJSON {
				enc := json.NewEncoder(s.Out)
				enc.SetIndent("", "  ")
				return enc.Encode(info)
			}
			fmt.Fprintf(s.Out, "dockplan v%s\n", info.Version)
			if info.Revision != "" {
				fmt.Fprintf(s.Out, "revision %s\n", info.Revision)
			}
			fmt.Fprintf(s.Out, "%s on %s\n", info.GoVersion, info.Platform)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the version as JSON")
	return cmd
}

func currentVersion() versionInfo {
	info := versionInfo{
		FormatVersion: "1.0", Version: Version, GoVersion: runtime.Version(),
		Platform: runtime.GOOS + "_" + runtime.GOARCH,
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				info.Revision = s.Value
			}
		}
	}
	return info
}
