package main

import (
	"errors"

	"github.com/spf13/cobra"

	"lode/internal/loadgen"
)

// newReportCmd is the parent of the result-file commands (merge, and
// later open).
func newReportCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "report",
		Short: "Work with result files: merge lode load --json results from several machines",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newReportMergeCmd(), newReportOpenCmd())
	return cmd
}

func newReportMergeCmd() *cobra.Command {
	var out, csvPrefix string
	cmd := &cobra.Command{
		Use:   "merge RESULT.json... -o MERGED.json",
		Short: "Merge lode load --json results exactly (HDR histograms add without loss)",
		Long: `Merge combines lode load --json results of runs that ran at the same time on several
machines against one target: counts and HDR histograms add exactly, so the merged
percentiles equal those of one histogram fed every sample. The merged duration is the
longest run's; req/s is the sum. It prints the merged table.`,
		Example: `  lode report merge a.json b.json -o all.json
  lode report merge run-*.json -o all.json --csv all`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" && csvPrefix == "" {
				return errors.New("give -o MERGED.json (and/or --csv PREFIX) for the merged result")
			}
			var results []*loadgen.Result
			for _, p := range args {
				r, err := loadgen.ReadJSON(p)
				if err != nil {
					return err
				}
				results = append(results, r)
			}
			merged, err := loadgen.Merge(results...)
			if err != nil {
				return err
			}
			loadgen.WriteTable(cmd.OutOrStdout(), merged)
			if out != "" {
				if err := loadgen.WriteJSON(out, merged); err != nil {
					return err
				}
			}
			if csvPrefix != "" {
				return loadgen.WriteCSV(csvPrefix, merged)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "write the merged result to this JSON file")
	cmd.Flags().StringVar(&csvPrefix, "csv", "", "also write Locust-style CSV files with this prefix")
	return cmd
}
