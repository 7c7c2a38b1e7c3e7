package main

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/config"
	"sigs.k8s.io/yaml"

	"github.com/stashplane/stashplane/apis"
)

// checkOutput refuses an -o the commands do not print.
func checkOutput(output string) error {
	if output != "" && output != "yaml" && output != "json" {
		return fmt.Errorf("cannot print as %q: use -o yaml or -o json, or no -o for a table", output)
	}
	return nil
}

// writeData prints v as YAML or JSON for -o yaml and -o json, and says
// whether it did: with no -o the caller prints its table.
func writeData(w io.Writer, v any, output string) (bool, error) {
	var b []byte
	var err error
	switch output {
	case "json":
		b, err = json.MarshalIndent(v, "", "  ")
		b = append(b, '\n')
	case "yaml":
		b, err = yaml.Marshal(v)
	default:
		return false, nil
	}
	if err != nil {
		return true, fmt.Errorf("cannot encode the output: %w", err)
	}
	_, err = w.Write(b)
	return true, err
}

// clientIn is a client of the kubeconfig's cluster and the namespace a
// command works in: ns, else the kubeconfig context's, as kubectl's -n.
func clientIn(ns string) (client.Client, string, error) {
	ns, err := orContextNamespace(ns)
	if err != nil {
		return nil, "", err
	}
	c, err := kubeClient()
	return c, ns, err
}

// kubeClient is the CLI's one client of the kubeconfig's cluster, with
// the scheme of apis.Scheme.
func kubeClient() (client.Client, error) {
	cfg, err := config.GetConfig()
	if err != nil {
		return nil, fmt.Errorf("cannot load cluster configuration: %w", err)
	}
	s, err := apis.Scheme()
	if err != nil {
		return nil, err
	}
	c, err := client.New(cfg, client.Options{Scheme: s})
	if err != nil {
		return nil, fmt.Errorf("cannot make client: %w", err)
	}
	return c, nil
}

// clientset is the kubeconfig's configuration and a clientset of it, for
// what controller-runtime's client does not do (pod logs, exec).
func clientset() (*rest.Config, kubernetes.Interface, error) {
	cfg, err := config.GetConfig()
	if err != nil {
		return nil, nil, fmt.Errorf("cannot load cluster configuration: %w", err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot make clientset: %w", err)
	}
	return cfg, cs, nil
}

// namespaceFlag adds kubectl's -n/--namespace: empty means the kubeconfig
// context's namespace (clientIn).
func namespaceFlag(cmd *cobra.Command, ns *string, of string) {
	cmd.Flags().StringVarP(ns, "namespace", "n", "", "namespace of the "+of+" (default: the kubeconfig context's namespace)")
}

// outputFlag adds kubectl's -o/--output with yaml and json.
func outputFlag(cmd *cobra.Command, output *string) {
	cmd.Flags().StringVarP(output, "output", "o", "", "output format: yaml or json (default: a table)")
}
