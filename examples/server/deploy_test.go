package main

import (
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"flag"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/adshare/adshare/internal/testenv"
)

// The deployment files, relative to this package; the repository root
// is the Docker build context.
const (
	deployDir = "deploy"
	repoRoot  = "../.."
)

// serverEnvNames returns the environment variables the server reads,
// from its flag set: parseConfig asks getenv for each flag's variable as
// it binds the flag, and each flag's usage ends with that variable's
// name in parentheses, which this holds to what was asked.
func serverEnvNames(t testing.TB) map[string]bool {
	t.Helper()
	asked := map[string]bool{}
	var fs *flag.FlagSet
	_, _, err := parseConfig("server", nil, func(k string) string { asked[k] = true; return "" }, io.Discard,
		func(f *flag.FlagSet) { fs = f })
	require.NoError(t, err)
	flags := 0
	fs.VisitAll(func(f *flag.Flag) {
		flags++
		i := strings.LastIndex(f.Usage, " (")
		require.True(t, i >= 0 && strings.HasSuffix(f.Usage, ")"), "flag -%s names no variable: %q", f.Name, f.Usage)
		require.True(t, asked[f.Usage[i+2:len(f.Usage)-1]], "flag -%s names %s but reads another variable", f.Name, f.Usage[i+2:])
	})
	require.Len(t, asked, flags, "one variable per flag")
	require.Contains(t, asked, "DATABASE_URL")
	return asked
}

// requireKnownEnv fails for every name the server does not read.
func requireKnownEnv(t testing.TB, where string, names []string) {
	t.Helper()
	known := serverEnvNames(t)
	for _, n := range names {
		require.True(t, known[n], "%s sets %s, which the server does not read (a typo, or a flag that went)", where, n)
	}
}

// decodeYAML decodes every document of a YAML file strictly into a new
// T each (fields T does not have are an error).
func decodeYAML[T any](t testing.TB, path string) []T {
	t.Helper()
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	var docs []T
	for {
		var doc T
		err := dec.Decode(&doc)
		if err == io.EOF {
			return docs
		}
		require.NoError(t, err, path)
		docs = append(docs, doc)
	}
}

// composeFile is the part of the compose specification compose.yaml
// uses; decoding is strict, so a misspelt key fails.
type composeFile struct {
	Name     string                    `yaml:"name"`
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
}

type composeService struct {
	Image string `yaml:"image"`
	Build *struct {
		Context    string `yaml:"context"`
		Dockerfile string `yaml:"dockerfile"`
	} `yaml:"build"`
	Command     []string          `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	Ports       []string          `yaml:"ports"`
	Volumes     []string          `yaml:"volumes"`
	DependsOn   map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
	Healthcheck *struct {
		Test        []string `yaml:"test"`
		Interval    string   `yaml:"interval"`
		Timeout     string   `yaml:"timeout"`
		Retries     int      `yaml:"retries"`
		StartPeriod string   `yaml:"start_period"`
	} `yaml:"healthcheck"`
	ReadOnly        bool     `yaml:"read_only"`
	User            string   `yaml:"user"`
	CapDrop         []string `yaml:"cap_drop"`
	SecurityOpt     []string `yaml:"security_opt"`
	StopGracePeriod string   `yaml:"stop_grace_period"`
	Restart         string   `yaml:"restart"`
}

// TestComposeFile holds the local stack to the server: the images asked
// for, a healthcheck on every service that the server waits for, an
// environment of variables the server reads only, and the server started
// on that environment (its hosts swapped for the test's servers) answers
// its own healthcheck command.
func TestComposeFile(t *testing.T) {
	t.Parallel()
	docs := decodeYAML[composeFile](t, filepath.Join(deployDir, "compose.yaml"))
	require.Len(t, docs, 1)
	c := docs[0]
	require.ElementsMatch(t, []string{"postgres", "redis", "stripe-mock", "server"}, slices.Collect(maps.Keys(c.Services)))
	require.Regexp(t, `^postgres:15(\.|-|$)`, c.Services["postgres"].Image)
	require.Regexp(t, `^redis:7(\.|-|$)`, c.Services["redis"].Image)
	require.Equal(t, "stripe/stripe-mock:"+testenv.StripeMockVersion, c.Services["stripe-mock"].Image, "the version the tests run against")
	for name, s := range c.Services {
		require.NotNil(t, s.Healthcheck, "%s has a healthcheck", name)
		require.Contains(t, []string{"CMD", "CMD-SHELL"}, s.Healthcheck.Test[0], name)
	}

	server := c.Services["server"]
	require.NotNil(t, server.Build)
	require.FileExists(t, filepath.Join(deployDir, server.Build.Context, "go.mod"), "the build context is the module root")
	require.FileExists(t, filepath.Join(deployDir, server.Build.Context, server.Build.Dockerfile))
	require.Equal(t, filepath.Clean(repoRoot), filepath.Clean(filepath.Join(deployDir, server.Build.Context)))
	for _, dep := range []string{"postgres", "redis", "stripe-mock"} {
		require.Equal(t, "service_healthy", server.DependsOn[dep].Condition, "the server waits for %s", dep)
	}
	require.True(t, server.ReadOnly, "the server runs on a read-only root")
	require.NotContains(t, []string{"", "0", "root"}, strings.Split(server.User, ":")[0])
	requireKnownEnv(t, "compose.yaml's server", slices.Collect(maps.Keys(server.Environment)))

	cfg, rest, err := parseConfig("server", nil, func(k string) string { return server.Environment[k] }, io.Discard)
	require.NoError(t, err, "the server parses the compose environment")
	require.Empty(t, rest)
	grace, err := time.ParseDuration(server.StopGracePeriod)
	require.NoError(t, err)
	require.Greater(t, grace, cfg.shutdownTimeout, "stop_grace_period leaves the drain its time")

	// The documented configuration, with the test's servers for the
	// compose network's hosts, passes check and serves.
	env := maps.Clone(server.Environment)
	redisURL, prefix := testenv.Redis(t)
	env["DATABASE_URL"] = testServer(t, env["DATABASE_URL"], testenv.PostgresSchema(t))
	env["REDIS_URL"] = testServer(t, env["REDIS_URL"], redisURL)
	env["ADSHARE_REDIS_PREFIX"] = prefix
	env["ADSHARE_STRIPE_API_URL"] = testServer(t, env["ADSHARE_STRIPE_API_URL"], testenv.StripeMock(t))
	out, err := runCheckCmd(t, env, "-allow-pending") // the server migrates as it starts
	require.NoError(t, err, out)
	base, logs := startServer(t, env)
	require.Contains(t, logs.String(), `"msg":"billing: Stripe"`)

	hc := server.Healthcheck.Test
	require.Equal(t, []string{"CMD", "/server", "probe"}, hc[:3], "the image has no shell: the server probes itself")
	probeURL, err := url.Parse(hc[len(hc)-1])
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1:"+portOf(t, cfg.addr), probeURL.Host, "the healthcheck asks the port the server listens on")
	args := append([]string{"server"}, hc[2:len(hc)-1]...)
	require.NoError(t, run(context.Background(), append(args, base+probeURL.Path), func(string) string { return "" }, io.Discard),
		"the healthcheck passes on the server started with the compose environment")
}

// testServer checks that documented is a URL naming a host (of the
// compose network) and returns the test's server, which stands for it.
func testServer(t testing.TB, documented, test string) string {
	t.Helper()
	u, err := url.Parse(documented)
	require.NoError(t, err, documented)
	require.NotEmpty(t, u.Host, documented)
	return test
}

func portOf(t testing.TB, addr string) string {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	require.NoError(t, err, addr)
	return port
}

// k8sMeta is what every Kubernetes object has.
type k8sMeta struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name   string            `yaml:"name"`
		Labels map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
}

type k8sContainer struct {
	Name  string   `yaml:"name"`
	Image string   `yaml:"image"`
	Args  []string `yaml:"args"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	EnvFrom []struct {
		ConfigMapRef *struct {
			Name string `yaml:"name"`
		} `yaml:"configMapRef"`
		SecretRef *struct {
			Name string `yaml:"name"`
		} `yaml:"secretRef"`
	} `yaml:"envFrom"`
	Env []struct {
		Name      string `yaml:"name"`
		Value     string `yaml:"value"`
		ValueFrom *struct {
			SecretKeyRef *struct {
				Name     string `yaml:"name"`
				Key      string `yaml:"key"`
				Optional bool   `yaml:"optional"`
			} `yaml:"secretKeyRef"`
		} `yaml:"valueFrom"`
	} `yaml:"env"`
	StartupProbe   *k8sProbe `yaml:"startupProbe"`
	LivenessProbe  *k8sProbe `yaml:"livenessProbe"`
	ReadinessProbe *k8sProbe `yaml:"readinessProbe"`
	Lifecycle      struct {
		PreStop *struct {
			Sleep *struct {
				Seconds int `yaml:"seconds"`
			} `yaml:"sleep"`
		} `yaml:"preStop"`
	} `yaml:"lifecycle"`
	SecurityContext struct {
		AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
		ReadOnlyRootFilesystem   bool  `yaml:"readOnlyRootFilesystem"`
		Capabilities             struct {
			Drop []string `yaml:"drop"`
		} `yaml:"capabilities"`
	} `yaml:"securityContext"`
}

type k8sProbe struct {
	HTTPGet struct {
		Path string `yaml:"path"`
		Port string `yaml:"port"`
	} `yaml:"httpGet"`
	PeriodSeconds    int `yaml:"periodSeconds"`
	TimeoutSeconds   int `yaml:"timeoutSeconds"`
	FailureThreshold int `yaml:"failureThreshold"`
}

type k8sPodTemplate struct {
	Metadata struct {
		Labels      map[string]string `yaml:"labels"`
		Annotations map[string]string `yaml:"annotations"`
	} `yaml:"metadata"`
	Spec struct {
		TerminationGracePeriodSeconds *int   `yaml:"terminationGracePeriodSeconds"`
		RestartPolicy                 string `yaml:"restartPolicy"`
		SecurityContext               struct {
			RunAsNonRoot bool `yaml:"runAsNonRoot"`
			RunAsUser    int  `yaml:"runAsUser"`
		} `yaml:"securityContext"`
		InitContainers []k8sContainer `yaml:"initContainers"`
		Containers     []k8sContainer `yaml:"containers"`
	} `yaml:"spec"`
}

// k8sObjects are the manifests, by kind (one object of each).
type k8sObjects struct {
	configMap struct {
		Data map[string]string `yaml:"data"`
	}
	deployment struct {
		Spec struct {
			Replicas int `yaml:"replicas"`
			Selector struct {
				MatchLabels map[string]string `yaml:"matchLabels"`
			} `yaml:"selector"`
			Strategy struct {
				RollingUpdate struct {
					MaxUnavailable int `yaml:"maxUnavailable"`
				} `yaml:"rollingUpdate"`
			} `yaml:"strategy"`
			Template k8sPodTemplate `yaml:"template"`
		} `yaml:"spec"`
	}
	job struct {
		Spec struct {
			Template k8sPodTemplate `yaml:"template"`
		} `yaml:"spec"`
	}
	service struct {
		Spec struct {
			Selector map[string]string `yaml:"selector"`
			Ports    []struct {
				TargetPort string `yaml:"targetPort"`
			} `yaml:"ports"`
		} `yaml:"spec"`
	}
	pdb struct {
		Spec struct {
			MaxUnavailable *int `yaml:"maxUnavailable"`
			MinAvailable   *int `yaml:"minAvailable"`
			Selector       struct {
				MatchLabels map[string]string `yaml:"matchLabels"`
			} `yaml:"selector"`
		} `yaml:"spec"`
	}
	kustomization struct {
		Resources []string `yaml:"resources"`
	}
	files map[string]string // kind → file
}

// loadK8s parses every manifest: each document has a kind, an API
// version and (but the kustomization) a name, and is decoded by kind.
func loadK8s(t testing.TB) *k8sObjects {
	t.Helper()
	dir := filepath.Join(deployDir, "kubernetes")
	paths, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	require.NoError(t, err)
	objs := &k8sObjects{files: map[string]string{}}
	targets := map[string]any{
		"ConfigMap": &objs.configMap, "Deployment": &objs.deployment, "Job": &objs.job, "Service": &objs.service,
		"PodDisruptionBudget": &objs.pdb, "Kustomization": &objs.kustomization,
	}
	for _, p := range paths {
		for _, node := range decodeYAMLNodes(t, p) {
			var meta k8sMeta
			require.NoError(t, node.Decode(&meta), p)
			require.NotEmpty(t, meta.APIVersion, p)
			require.NotEmpty(t, meta.Kind, p)
			if meta.Kind != "Kustomization" {
				require.NotEmpty(t, meta.Metadata.Name, "%s: a %s without a name", p, meta.Kind)
			}
			target, ok := targets[meta.Kind]
			require.True(t, ok, "%s: a %s, which this test does not know", p, meta.Kind)
			require.NotContains(t, objs.files, meta.Kind, "one %s", meta.Kind)
			objs.files[meta.Kind] = filepath.Base(p)
			require.NoError(t, node.Decode(target), p)
		}
	}
	require.Len(t, objs.files, len(targets), "every kind: %v", objs.files)
	return objs
}

func decodeYAMLNodes(t testing.TB, path string) []*yaml.Node {
	t.Helper()
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	var nodes []*yaml.Node
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if err == io.EOF {
			return nodes
		}
		require.NoError(t, err, path)
		nodes = append(nodes, &n)
	}
}

// containerEnv is a container's environment with test values: the
// ConfigMap's data, and secrets[key] for each secret reference.
func containerEnv(t testing.TB, objs *k8sObjects, c k8sContainer, secrets map[string]string) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, from := range c.EnvFrom {
		require.NotNil(t, from.ConfigMapRef, "%s: envFrom names the ConfigMap only (secrets one by one)", c.Name)
		maps.Copy(env, objs.configMap.Data)
	}
	for _, e := range c.Env {
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			if v, ok := secrets[e.ValueFrom.SecretKeyRef.Key]; ok {
				env[e.Name] = v
			}
			continue
		}
		env[e.Name] = e.Value
	}
	return env
}

// TestKubernetesManifests holds the manifests to the server: every
// variable one it reads, the fleet's keys and passwords from the Secret,
// probes on paths the server serves with the ConfigMap's configuration,
// the grace period longer than the preStop sleep and the drain, the
// migration Job on the Deployment's image and environment (and its
// commands run against the test database in order), and the
// PodDisruptionBudget and Service selecting the pods.
func TestKubernetesManifests(t *testing.T) {
	t.Parallel()
	objs := loadK8s(t)
	dep := objs.deployment.Spec
	pod := dep.Template.Spec
	require.Len(t, pod.Containers, 1)
	server := pod.Containers[0]

	// Every manifest but the Job is in the kustomization; the Job goes
	// first, on its own.
	var applied []string
	for kind, f := range objs.files {
		if kind != "Kustomization" && kind != "Job" {
			applied = append(applied, f)
		}
	}
	require.ElementsMatch(t, applied, objs.kustomization.Resources)

	// Variables.
	requireKnownEnv(t, objs.files["ConfigMap"], slices.Collect(maps.Keys(objs.configMap.Data)))
	secretVars := []string{"DATABASE_URL", "REDIS_URL", "ADSHARE_JWT_SEED", "ADSHARE_REFRESH_KEY", "ADSHARE_TRACKING_KEYS",
		"ADSHARE_VIEWER_KEY_SECRET", "ADSHARE_STRIPE_SECRET_KEY", "ADSHARE_STRIPE_WEBHOOK_SECRETS"}
	for _, v := range secretVars {
		require.NotContains(t, objs.configMap.Data, v, "%s is a secret", v)
	}
	for _, c := range append(slices.Clone(pod.Containers), append(objs.job.Spec.Template.Spec.InitContainers, objs.job.Spec.Template.Spec.Containers...)...) {
		var names []string
		refs := map[string]bool{}
		for _, e := range c.Env {
			names = append(names, e.Name)
			if r := e.ValueFrom; r != nil && r.SecretKeyRef != nil {
				refs[e.Name] = true
				require.Equal(t, e.Name, r.SecretKeyRef.Key, "%s: the Secret's keys are the variables' names", c.Name)
				if slices.Contains([]string{"DATABASE_URL", "ADSHARE_JWT_SEED", "ADSHARE_REFRESH_KEY", "ADSHARE_TRACKING_KEYS", "ADSHARE_VIEWER_KEY_SECRET"}, e.Name) {
					require.False(t, r.SecretKeyRef.Optional, "%s: %s is required in a fleet (server check fails without it)", c.Name, e.Name)
				}
			}
		}
		requireKnownEnv(t, c.Name+" in "+objs.files["Deployment"]+" or "+objs.files["Job"], names)
		for _, v := range secretVars {
			require.True(t, refs[v], "%s: %s comes from the Secret", c.Name, v)
		}
		require.True(t, c.SecurityContext.ReadOnlyRootFilesystem, c.Name)
		require.NotNil(t, c.SecurityContext.AllowPrivilegeEscalation, c.Name)
		require.False(t, *c.SecurityContext.AllowPrivilegeEscalation, c.Name)
		require.Equal(t, []string{"ALL"}, c.SecurityContext.Capabilities.Drop, c.Name)
		require.Equal(t, server.Image, c.Image, "%s runs the Deployment's image", c.Name)
		require.Equal(t, server.Env, c.Env, "%s has the Deployment's environment", c.Name)
		require.Equal(t, server.EnvFrom, c.EnvFrom, "%s has the Deployment's environment", c.Name)
	}
	for _, p := range []k8sPodTemplate{dep.Template, objs.job.Spec.Template} {
		require.True(t, p.Spec.SecurityContext.RunAsNonRoot)
		require.Equal(t, dockerfileUID(t), p.Spec.SecurityContext.RunAsUser, "the image's user")
	}

	// Probes, on paths the server serves with the ConfigMap's settings.
	cfg, _, err := parseConfig("server", nil, func(k string) string { return objs.configMap.Data[k] }, io.Discard)
	require.NoError(t, err, "the server parses the ConfigMap")
	ports := map[string]int{}
	for _, p := range server.Ports {
		ports[p.Name] = p.ContainerPort
	}
	require.Equal(t, portOf(t, cfg.addr), strconv.Itoa(ports["http"]), "the container port is the one ADSHARE_ADDR listens on")
	require.NotNil(t, server.ReadinessProbe)
	require.NotNil(t, server.LivenessProbe)
	require.Equal(t, "/readyz", server.ReadinessProbe.HTTPGet.Path, "readiness checks the dependencies")
	require.Equal(t, "/healthz", server.LivenessProbe.HTTPGet.Path, "liveness checks the process only")
	probes := []*k8sProbe{server.ReadinessProbe, server.LivenessProbe}
	if server.StartupProbe != nil {
		probes = append(probes, server.StartupProbe)
	}
	base, _ := startServer(t, objs.configMap.Data)
	for _, p := range probes {
		require.Contains(t, ports, p.HTTPGet.Port, "the probe names a container port")
		status, body := get(t, base+p.HTTPGet.Path)
		require.Equal(t, http.StatusOK, status, "%s: %s", p.HTTPGet.Path, body)
	}
	ann := dep.Template.Metadata.Annotations
	require.Equal(t, strconv.Itoa(ports["http"]), ann["prometheus.io/port"])
	status, _ := get(t, base+ann["prometheus.io/path"])
	require.Equal(t, http.StatusOK, status, "the scrape path")

	// Termination: the preStop sleep, then the drain, within the grace.
	require.NotNil(t, server.Lifecycle.PreStop)
	require.NotNil(t, server.Lifecycle.PreStop.Sleep, "a sleep action: the image has no shell")
	preStop := time.Duration(server.Lifecycle.PreStop.Sleep.Seconds) * time.Second
	require.Positive(t, preStop)
	require.NotNil(t, pod.TerminationGracePeriodSeconds)
	grace := time.Duration(*pod.TerminationGracePeriodSeconds) * time.Second
	require.Greater(t, grace, cfg.shutdownTimeout+preStop,
		"terminationGracePeriodSeconds (%s) leaves the preStop sleep (%s) and ADSHARE_SHUTDOWN_TIMEOUT (%s) their time", grace, preStop, cfg.shutdownTimeout)
	require.Zero(t, dep.Strategy.RollingUpdate.MaxUnavailable, "a new pod is ready before an old one goes")

	// Selection.
	labels := dep.Template.Metadata.Labels
	for _, sel := range []map[string]string{dep.Selector.MatchLabels, objs.pdb.Spec.Selector.MatchLabels, objs.service.Spec.Selector} {
		require.NotEmpty(t, sel)
		for k, v := range sel {
			require.Equal(t, v, labels[k], "selects the Deployment's pods")
		}
	}
	require.Contains(t, ports, objs.service.Spec.Ports[0].TargetPort)
	if mu := objs.pdb.Spec.MaxUnavailable; mu != nil {
		require.Positive(t, *mu, "a drain can proceed")
		require.Less(t, *mu, dep.Replicas)
	} else {
		require.NotNil(t, objs.pdb.Spec.MinAvailable)
		require.Less(t, *objs.pdb.Spec.MinAvailable, dep.Replicas, "a drain can proceed")
	}

	// The Job: check, then migrate, as its containers run them, against
	// the test database with test keys; the server's check then passes.
	job := objs.job.Spec.Template.Spec
	require.Contains(t, []string{"Never", "OnFailure"}, job.RestartPolicy)
	require.Len(t, job.InitContainers, 1)
	require.Len(t, job.Containers, 1)
	require.Equal(t, "check", job.InitContainers[0].Args[0])
	require.Equal(t, []string{"migrate", "up"}, job.Containers[0].Args)
	redisURL, prefix := testenv.Redis(t)
	secrets := merge(fleetKeyEnv(), map[string]string{"DATABASE_URL": testenv.PostgresSchema(t), "REDIS_URL": redisURL,
		"ADSHARE_STRIPE_SECRET_KEY": "sk_test_123", "ADSHARE_STRIPE_WEBHOOK_SECRETS": "whsec_test"})
	for _, c := range []k8sContainer{job.InitContainers[0], job.Containers[0]} {
		env := containerEnv(t, objs, c, secrets)
		env["ADSHARE_REDIS_PREFIX"] = prefix
		var out bytes.Buffer
		require.NoError(t, run(context.Background(), append([]string{"server"}, c.Args...), func(k string) string { return env[k] }, &out),
			"%s: %s", c.Name, out.String())
	}
	env := containerEnv(t, objs, server, secrets)
	env["ADSHARE_REDIS_PREFIX"] = prefix
	out, err := runCheckCmd(t, env)
	require.NoError(t, err, "after the Job the Deployment's pods pass check:\n%s", out)
}

// dockerfileInstr is one instruction of a Dockerfile.
type dockerfileInstr struct {
	cmd  string // upper case
	args string
}

// parseDockerfile returns the instructions, continuation lines joined,
// comments and parser directives dropped.
func parseDockerfile(t testing.TB) []dockerfileInstr {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(deployDir, "Dockerfile"))
	require.NoError(t, err)
	var out []dockerfileInstr
	var cur strings.Builder
	for _, line := range strings.Split(string(raw), "\n") {
		trimmed := strings.TrimSpace(line)
		if cur.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if cur.Len() > 0 && strings.HasPrefix(trimmed, "#") {
			continue // a comment inside a continued instruction
		}
		if s, ok := strings.CutSuffix(trimmed, `\`); ok {
			cur.WriteString(s + " ")
			continue
		}
		cur.WriteString(trimmed)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, dockerfileInstr{cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args)})
		cur.Reset()
	}
	require.Zero(t, cur.Len(), "an instruction continues past the end")
	return out
}

// dockerfileUID is the numeric user of the final stage.
func dockerfileUID(t testing.TB) int {
	t.Helper()
	var user string
	for _, in := range parseDockerfile(t) {
		if in.cmd == "USER" {
			user = in.args
		}
	}
	uid, err := strconv.Atoi(strings.Split(user, ":")[0])
	require.NoError(t, err, "USER is numeric, so that runAsNonRoot can verify it: %q", user)
	return uid
}

// shellWords splits a command line into words, honouring single and
// double quotes (enough for the Dockerfile's build command).
func shellWords(t testing.TB, s string) []string {
	t.Helper()
	var words []string
	var w strings.Builder
	inWord := false
	var quote rune
	for _, r := range s {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			w.WriteRune(r)
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case r == ' ' || r == '\t':
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		default:
			w.WriteRune(r)
			inWord = true
		}
	}
	require.Zero(t, quote, "an unterminated quote in %q", s)
	if inWord {
		words = append(words, w.String())
	}
	return words
}

// TestDockerfileBuilds holds the Dockerfile to its promises: several
// stages, a final one on distroless static (or scratch) as a non-root
// user, the entrypoint the binary the build stage made; and its go build
// command, run as written here (for this machine's platform), makes a
// static, stripped binary whose check passes on the embedded defaults.
func TestDockerfileBuilds(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds the server the way the image does")
	}
	instrs := parseDockerfile(t)
	args := map[string]string{"TARGETOS": runtime.GOOS, "TARGETARCH": runtime.GOARCH, "BUILDPLATFORM": runtime.GOOS + "/" + runtime.GOARCH}
	var froms, entrypoint []string
	var build, user string
	copies := map[string]string{} // destination → source, from other stages
	for _, in := range instrs {
		switch in.cmd {
		case "ARG":
			name, def, _ := strings.Cut(in.args, "=")
			if _, ok := args[name]; !ok {
				args[name] = def
			}
		case "FROM":
			froms = append(froms, os.Expand(in.args, func(k string) string { return args[k] }))
		case "RUN":
			if strings.Contains(in.args, "go build") {
				require.Empty(t, build, "one go build")
				build = in.args
			}
		case "COPY":
			f := strings.Fields(in.args)
			if strings.HasPrefix(f[0], "--from=") {
				copies[f[len(f)-1]] = f[len(f)-2]
			}
		case "USER":
			user = in.args
		case "ENTRYPOINT":
			require.NoError(t, json.Unmarshal([]byte(in.args), &entrypoint), "ENTRYPOINT in exec form")
		case "HEALTHCHECK":
			t.Fatal("no HEALTHCHECK: Kubernetes probes, and compose runs /server probe")
		}
	}
	require.GreaterOrEqual(t, len(froms), 2, "multi-stage")
	final := strings.Fields(froms[len(froms)-1])[0]
	require.True(t, strings.HasPrefix(final, "gcr.io/distroless/static") || final == "scratch", "the final stage has no shell or libc: %s", final)
	require.NotEmpty(t, user)
	require.NotZero(t, dockerfileUID(t), "USER is not root")
	require.NotEmpty(t, entrypoint)
	built, ok := copies[entrypoint[0]]
	require.True(t, ok, "the entrypoint %s is copied from the build stage", entrypoint[0])

	// The build command: leading RUN options, then NAME=value settings,
	// then go build; its -o is the file the final stage copies.
	words := shellWords(t, os.Expand(build, func(k string) string { return args[k] }))
	for len(words) > 0 && strings.HasPrefix(words[0], "--") {
		words = words[1:]
	}
	env := os.Environ()
	for len(words) > 0 && strings.Contains(words[0], "=") {
		env = append(env, words[0])
		words = words[1:]
	}
	require.GreaterOrEqual(t, len(words), 2)
	require.Equal(t, []string{"go", "build"}, words[:2])
	require.Contains(t, env, "CGO_ENABLED=0", "a static build")
	bin := filepath.Join(t.TempDir(), "server")
	goArgs := slices.Clone(words[1:])
	i := slices.Index(goArgs, "-o")
	require.Positive(t, i, "go build -o names the output")
	require.Equal(t, built, goArgs[i+1], "the final stage copies what go build wrote")
	goArgs[i+1] = bin
	cmd := exec.Command("go", goArgs...)
	cmd.Dir = repoRoot // WORKDIR /src holds the build context, the repository root
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Run(), "go %s:\n%s", strings.Join(goArgs, " "), stderr.String())

	f, err := elf.Open(bin)
	require.NoError(t, err)
	defer f.Close()
	for _, p := range f.Progs {
		require.NotEqual(t, elf.PT_INTERP, p.Type, "static: no dynamic loader")
	}
	libs, err := f.ImportedLibraries()
	require.NoError(t, err)
	require.Empty(t, libs, "static: no shared libraries")
	require.Nil(t, f.Section(".symtab"), "stripped (-s)")

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	check := exec.CommandContext(ctx, bin, "check")
	check.Env = []string{} // the image's binary, on nothing but its defaults
	out, err := check.CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), "check passed")
}
